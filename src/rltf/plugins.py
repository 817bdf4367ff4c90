"""Plug-ins as plain Python files: ``path/to/file.py:Name`` names an object defined in that file.

A user's task (``--task my_task.py:MyTask``), feedback provider (``--feedback my_task.py:MyCritic``)
or reward function (``add2?reward=my_rewards.py:brevity``) is loaded from its file, as verl loads
a reward file: no package, no registration step. Errors name the file and the object.
"""
from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from rltf.errors import ConfigError

_SPEC = re.compile(r"^(?P<path>[^?]+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def is_plugin_spec(text: Any) -> bool:
    """True for ``something.py:Name``."""
    return isinstance(text, str) and _SPEC.match(text) is not None


def load_object(spec: str) -> Any:
    """The object ``Name`` defined in ``path.py`` (the file is imported once per process)."""
    m = _SPEC.match(spec)
    if m is None:
        raise ConfigError(f"{spec!r}: a plug-in is written path/to/file.py:Name")
    path = Path(m["path"]).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{spec}: no such file {path}")
    module_name = "rltf_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise ConfigError(f"{spec}: importing {path.name} failed: {type(err).__name__}: {err}") from None
    try:
        return getattr(module, m["name"])
    except AttributeError:
        raise ConfigError(f"{spec}: {path.name} defines no {m['name']!r}") from None


def load_subclass(spec: str, base: type, what: str) -> type:
    """``load_object`` for a class that must derive from ``base``."""
    obj = load_object(spec)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ConfigError(f"{spec}: {what} must be a subclass of {base.__module__}.{base.__qualname__}")
    return obj
