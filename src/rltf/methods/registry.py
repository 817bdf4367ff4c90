"""The method registry: ``METHODS[name]`` is a :class:`rltf.engine.parts.Method`, a value built from
parts. Each file of :mod:`rltf.methods` registers its methods when imported; the CLI (``rltf train
METHOD``), the compare harness and the checkpoints read this registry, and nothing else compares
method names as strings. A method of your own is one :func:`register_method` call (docs/EXTENDING.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rltf.engine.config_fields import config_from_recipe
from rltf.engine.engine import Engine
from rltf.engine.parts import Method
from rltf.errors import ConfigError
from rltf.plugins import is_plugin_spec, load_object

METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add a method to the registry (a user's too); its name must be new."""
    if method.name in METHODS:
        raise ConfigError(f"method {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``; ``path/to/file.py:NAME`` imports that file first (which
    registers the ``Method`` it defines as ``NAME``)."""
    if is_plugin_spec(name):
        return load_method(name)
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def load_method(spec: str) -> Method:
    """The :class:`Method` a plug-in file defines (``path/to/file.py:NAME``), registered."""
    method = load_object(spec)
    if not isinstance(method, Method):
        raise ConfigError(f"{spec}: a method plug-in names a rltf.engine.parts.Method, not {type(method).__name__}")
    if METHODS.get(method.name) is not method:
        register_method(method)
    return method


def make_config(method: str, recipe: str | Path | None = None, overrides: dict[str, Any] | None = None):
    """The method's config: defaults < YAML recipe < overrides (CLI flags and --set). Unknown keys and
    out-of-range values are one-line ConfigErrors."""
    return config_from_recipe(get_method(method).config, method, recipe, overrides)


def citation_for(config) -> str:
    """The model card's citation for a run of ``config`` (its method's, and e.g. SCoRe's when its
    options shaped the run)."""
    return get_method(config.method).citation_for(config)


def build_trainer(config, console: Callable[[str], None] = print, resume: str | None = None):
    """What trains ``config.method``: the engine running the method, or the method's own runner."""
    method = get_method(config.method)
    if method.build is not None:
        return method.build(config, console=console, resume=resume)
    return Engine(config, method, console=console, resume=resume)
