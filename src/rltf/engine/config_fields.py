"""The machinery behind the config dataclasses: a field's help text and range (:func:`arg`), the
checks every value passes (:func:`check_value`), and reading a config from YAML and flags with
one-line errors (:func:`config_from_recipe`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import field, fields
from pathlib import Path
from typing import Any

import yaml

from rltf.errors import ConfigError
from rltf.feedback import KINDS as FEEDBACK_KINDS
from rltf.plugins import is_plugin_spec

_BOUNDS = ("ge", "gt", "le", "lt")


def arg(default, help: str, *, ge=None, gt=None, le=None, lt=None, choices=None, plugin: bool = False, **kw):
    """A config field: its help text, and the range (``ge``/``gt``/``le``/``lt``) or ``choices`` a
    value must satisfy (``plugin``: or a ``file.py:Name`` of the user's). The same metadata makes the
    CLI help, the YAML schema and the validation."""
    meta = {"help": help, **kw, **({"plugin": True} if plugin else {})}
    for key, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("choices", choices)):
        if value is not None:
            meta[key] = value
    return field(default=default, metadata=meta)


def check_value(name: str, value: Any, meta: dict) -> None:
    """Raise ConfigError when ``value`` breaks the field's range or choices (None means "unset" and passes)."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    for key, ok, words in (("ge", lambda v, b: v >= b, "at least"), ("gt", lambda v, b: v > b, "greater than"),
                           ("le", lambda v, b: v <= b, "at most"), ("lt", lambda v, b: v < b, "less than")):
        if key in meta and not ok(value, meta[key]):
            raise ConfigError(f"{name} must be {words} {meta[key]:g}, got {value!r}")
    if "choices" in meta and value not in meta["choices"] and not (meta.get("plugin") and is_plugin_spec(value)):
        extra = " or path/to/file.py:Name" if meta.get("plugin") else ""
        raise ConfigError(f"{name} must be one of {', '.join(meta['choices'])}{extra}, got {value!r}")


def range_text(meta: dict) -> str:
    """The field's constraint for help text, e.g. ">= 0, < 1" or "one of: sum, token-mean"."""
    if "choices" in meta:
        return "one of: " + ", ".join(meta["choices"]) + (", or file.py:Name" if meta.get("plugin") else "")
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return ", ".join(f"{signs[k]} {meta[k]:g}" for k in _BOUNDS if k in meta)


def validate_config(config) -> None:
    """Check every field of a config dataclass against its declared range or choices."""
    for f in fields(config):
        check_value(f.name, getattr(config, f.name), f.metadata)
    for kind in str(getattr(config, "eval_feedback", "") or "").split(","):  # a list of feedback kinds
        if kind.strip():
            check_value("eval_feedback", kind.strip(), {"choices": FEEDBACK_KINDS, "plugin": True})


def _coerce(name: str, value: Any, kind: Any) -> Any:
    text = str(kind)
    if value is None:
        return None
    try:
        if "bool" in text:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if "int" in text:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if "float" in text:
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot read {value!r} as {text}") from None
    return value if isinstance(value, str) or value is None else str(value)


def read_yaml_mapping(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """A YAML file holding a mapping (a recipe, a compare file), with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} file is a mapping of config keys to values")
    return data


def config_from_values(cls: type, values: dict[str, Any], name: str) -> Any:
    """An instance of the config dataclass ``cls`` from raw values (YAML, flags): unknown keys, values
    of the wrong type, and values outside a field's range or choices are one-line ConfigErrors."""
    known = {f.name: f for f in fields(cls)}
    values = {k: v for k, v in values.items() if k != "method"}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) for {name}: {', '.join(unknown)} (see `rltf train {name} --help`)")
    config = cls(**{k: _coerce(k, v, known[k].type) for k, v in values.items()})
    validate_config(config)
    config.check()  # checks between fields, once each field is in its range
    return config


def config_from_recipe(cls: type, name: str, recipe: str | Path | None = None,
                       overrides: dict[str, Any] | None = None) -> Any:
    """Defaults < YAML recipe < overrides (CLI flags and --set), through :func:`config_from_values`."""
    values: dict[str, Any] = dict(read_yaml_mapping(recipe)) if recipe else {}
    values.update(overrides or {})
    return config_from_values(cls, values, name)


def config_to_dict(config) -> dict[str, Any]:
    """A config dataclass as plain values (what checkpoints and run directories record)."""
    return dataclasses.asdict(config)
