"""The compare file of ``rltf compare`` (:mod:`rltf.eval.compare` documents its keys): its dataclass
and its reading, with one-line errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rltf.engine.config_fields import read_yaml_mapping
from rltf.errors import ConfigError
from rltf.methods import METHODS

KEEP_CHECKPOINTS = ("all", "model", "none")  # what a finished run keeps of its checkpoints


@dataclass
class CompareConfig:
    output_dir: str
    methods: dict[str, dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0])
    budget_tokens: int = 4000
    budget_points: list[int] = field(default_factory=list)
    metric: str = "accuracy"
    common: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)  # every metric tabulated; the first is ``metric``
    tasks: list[str] = field(default_factory=list)  # several tasks: runs/TASK/NAME-sSEED; empty: common's task
    baseline: str | None = None  # the run name the others are tested against
    contrasts: list[tuple[str, str]] = field(default_factory=list)  # pairs of run names tested a - b
    keep_checkpoints: str = "all"  # of a finished run: all, model (the last one's weights), none

    @property
    def points(self) -> list[int]:
        return sorted({0, *self.budget_points, self.budget_tokens})

    @property
    def all_metrics(self) -> list[str]:
        return list(dict.fromkeys([self.metric, *self.metrics]))

    @property
    def task_names(self) -> list[str]:
        return self.tasks or [str(self.common.get("task", "add2"))]

    def run_dir(self, task: str, name: str, seed: int) -> Path:
        root = Path(self.output_dir) / "runs"
        return (root / task if self.tasks else root) / f"{name}-s{seed}"


def load_compare_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CompareConfig:
    data = read_yaml_mapping(path, "compare")
    for key, value in (overrides or {}).items():  # --set budget_tokens=500, --set common.eval_n=8
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    known = {"output_dir", "methods", "seeds", "budget_tokens", "budget_points", "metric", "metrics", "tasks",
             "baseline", "common", "contrasts", "keep_checkpoints"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not isinstance(data.get("methods"), dict) or not data["methods"]:
        raise ConfigError(f"{path}: 'methods' must map run names to {{method: ..., other config keys}}")
    for name, spec in data["methods"].items():
        method = (spec or {}).get("method")
        policies = [n for n, m in METHODS.items() if m.policy]
        if method != "base" and method not in policies:
            raise ConfigError(f"{path}: method of {name!r} must be base or one of {', '.join(policies)}")
    cfg = CompareConfig(output_dir=str(data.get("output_dir", "runs/compare")), methods=data["methods"],
                        seeds=[int(s) for s in data.get("seeds", [0])],
                        budget_tokens=int(data.get("budget_tokens", 4000)),
                        budget_points=[int(p) for p in data.get("budget_points", [])],
                        metric=str(data.get("metric", "accuracy")), common=dict(data.get("common") or {}),
                        metrics=[str(m) for m in data.get("metrics", [])],
                        tasks=[str(t) for t in data.get("tasks", [])], baseline=data.get("baseline"),
                        contrasts=_contrast_pairs(path, data.get("contrasts") or [], data["methods"]),
                        keep_checkpoints=str(data.get("keep_checkpoints", "all")))
    if cfg.keep_checkpoints not in KEEP_CHECKPOINTS:
        raise ConfigError(f"{path}: keep_checkpoints must be one of {', '.join(KEEP_CHECKPOINTS)}, "
                          f"got {cfg.keep_checkpoints!r}")
    if cfg.budget_tokens < 1:
        raise ConfigError("budget_tokens must be positive")
    if cfg.baseline is None and "grpo" in cfg.methods:
        cfg.baseline = "grpo"
    if cfg.baseline is not None and cfg.baseline not in cfg.methods:
        raise ConfigError(f"{path}: baseline {cfg.baseline!r} is not one of the methods ({', '.join(cfg.methods)})")
    return cfg


def _contrast_pairs(path: str | Path, value: Any, methods: dict[str, Any]) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise ConfigError(f"{path}: contrasts must be a list of [name, name] pairs, got {value!r}")
    for a, b in value:
        for name in (a, b):
            if name not in methods:
                raise ConfigError(f"{path}: contrast {a} - {b}: {name!r} is not one of the methods ({', '.join(methods)})")
        if a == b:
            raise ConfigError(f"{path}: contrast {a} - {b} compares a method with itself")
    return [(str(a), str(b)) for a, b in value]
