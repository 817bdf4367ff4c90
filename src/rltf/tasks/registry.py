"""Task registry: names, presets and spec strings such as ``rg:leg_counting?min_animals=2``.

A spec is ``NAME[?key=value&key=value]``. NAME is a preset (``rltf tasks`` lists them), ``rg:DATASET``
for any reasoning-gym dataset, or ``KIND:PATH`` for a local file (``math:``, ``code:``, ``open:``,
``slf5k:``). Values are read as YAML scalars (``3`` is an int, ``true`` a bool, ``[1,2]`` a list).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

import yaml

from rltf.errors import ConfigError, RltfError
from rltf.plugins import is_plugin_spec, load_object, load_subclass
from rltf.tasks.base import Task
from rltf.tasks.reasoning_gym_task import ReasoningGymTask


@dataclass(frozen=True)
class Preset:
    name: str
    factory: Callable[..., Task]
    params: dict[str, Any]
    help: str
    cpu_scale: bool = False


PRESETS: dict[str, Preset] = {}
FILE_KINDS: dict[str, Callable[..., Task]] = {}


def register_preset(name: str, factory: Callable[..., Task], help: str, cpu_scale: bool = False, **params: Any):
    PRESETS[name] = Preset(name, factory, params, help, cpu_scale)


def register_file_kind(kind: str, factory: Callable[..., Task]):
    FILE_KINDS[kind] = factory


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, query = spec.partition("?")
    params: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"cannot read the parameters of task spec {spec!r}: use ?key=value&key=value")
        key, raw = unquote(key), unquote(raw)  # unquote, not unquote_plus: '+' stays a plus sign
        try:
            params[key] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            params[key] = raw
    if query and not params:
        raise ConfigError(f"cannot read the parameters of task spec {spec!r}: use ?key=value&key=value")
    return name, params


def get_task(spec: str | Task) -> Task:
    """Build a task from a spec string (or return a Task unchanged); a bad parameter is a ConfigError."""
    if isinstance(spec, Task):
        return spec
    try:
        return _build(spec)
    except RltfError:
        raise
    except (TypeError, ValueError, KeyError) as err:  # a parameter the task's constructor could not use
        raise ConfigError(f"task {spec!r}: bad parameter ({type(err).__name__}: {err})") from None


def _build(spec: str) -> Task:
    name, params = parse_spec(spec)
    rewards = params.pop("reward", None)
    weights = params.pop("reward_weights", None)
    task = _construct(spec, name, params)
    if rewards is not None:
        task.reward_functions = _reward_functions(spec, rewards, weights)
    return task


def _reward_functions(spec: str, rewards: Any, weights: Any) -> list[tuple[Callable[..., float], float]]:
    """``reward=file.py:fn`` or ``reward=[a.py:f, b.py:g]`` with optional ``reward_weights=[1, 0.5]``."""
    specs = rewards if isinstance(rewards, list) else [rewards]
    weights = [1.0] * len(specs) if weights is None else (weights if isinstance(weights, list) else [weights])
    if len(weights) != len(specs) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
        raise ConfigError(f"task {spec!r}: reward_weights must be one number per reward function")
    out = []
    for item, weight in zip(specs, weights):
        fn = load_object(str(item))
        if not callable(fn):
            raise ConfigError(f"task {spec!r}: {item} is not callable; a reward is fn(prompt, answer, **info) -> float")
        out.append((fn, float(weight)))
    return out


def _construct(spec: str, name: str, params: dict[str, Any]) -> Task:
    if is_plugin_spec(name):  # a Task subclass of the user's: path/to/file.py:MyTask
        task = load_subclass(name, Task, "a task")(**params)
        task.name = spec
        return task
    if name in PRESETS:
        preset = PRESETS[name]
        task = preset.factory(**{**preset.params, **params})
        task.name = spec if params else name
        return task
    kind, sep, rest = name.partition(":")
    if sep and kind == "rg":
        return ReasoningGymTask(rest, **params)
    if sep and kind in FILE_KINDS:
        return FILE_KINDS[kind](rest, **params)
    known = ", ".join(sorted(PRESETS))
    raise ConfigError(f"unknown task {spec!r}; known presets: {known}; or rg:DATASET, "
                      f"{', '.join(k + ':PATH' for k in sorted(FILE_KINDS))}")
