"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class RltfError(Exception):
    """Base class for every error caused by the user's input (files, names, flags)."""


class ConfigError(RltfError):
    """A bad option value, an unknown name, or an inconsistent configuration."""


class DataError(RltfError):
    """A missing or malformed data file (the message names the file and the line)."""


class ModelLoadError(RltfError):
    """A model or tokenizer that cannot be found or loaded."""


class SpanError(RltfError):
    """A span that cannot be read (no text, unknown label, wrong type) or placed."""


class NonFiniteError(RltfError):
    """A NaN or inf loss or gradient: the step is not applied and the last checkpoint stays intact."""
