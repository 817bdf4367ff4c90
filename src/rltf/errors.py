"""Errors a user can act on. The CLI prints them as one line and exits with the error's
``exit_code``: 2, or 3 for a run that stopped on purpose and can be resumed."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line
    error shows of a library's multi-line message."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class RltfError(Exception):
    """Base class for every error caused by the user's input (files, names, flags) or by the
    machine a run depends on (disk, judge endpoint, generation engine)."""

    exit_code = 2


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


class CheckpointError(RltfError):
    """A checkpoint or saved model whose files are damaged or missing (the message names the file)."""


class StorageError(RltfError):
    """A write that failed (disk full, read-only file system): the message names the path and the
    last complete checkpoint, which the failed write left intact."""


class BackendError(RltfError):
    """The generation engine (vLLM) failed or died during a rollout; the message names the setting to
    change when it ran out of memory, and the last complete checkpoint."""


class RunStopped(RltfError):
    """A run stopped on purpose after writing a checkpoint (e.g. its judge endpoint is down); it
    carries on with ``--resume`` once the cause is gone. The CLI exits with code 3."""

    exit_code = 3
