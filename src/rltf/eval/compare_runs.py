"""Running a compare study: each run's config, the order and selection of runs (``--only``), their
time estimates at the finished runs' pace (``--time-limit``), each run as a resumable ``rltf train``
subprocess whose wall time is kept over its sittings, and the finished runs' results.
:mod:`rltf.eval.compare` holds the compare file, the summary and the report.
"""
from __future__ import annotations

import fnmatch
import glob
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from rltf.errors import ConfigError
from rltf.eval.compare_config import CompareConfig
from rltf.eval.compare_report import hours
from rltf.methods import build_trainer, make_config



def run_config(cfg: CompareConfig, name: str, seed: int, run_dir: Path,
               task: str | None = None) -> tuple[str, dict[str, Any]]:
    """The method and the full config of one run (common < method entry < compare settings)."""
    spec = dict(cfg.methods[name] or {})
    method = spec.pop("method")
    values = {**cfg.common, **({"task": task} if cfg.tasks else {}), **spec, "seed": seed, "output_dir": str(run_dir),
              "max_generated_tokens": cfg.budget_tokens, "eval_at_tokens": ",".join(map(str, cfg.points[1:])),
              "eval_every": 0, "eval_at_start": True}
    values.setdefault("max_steps", 10_000)
    values.setdefault("save_every", 5)
    # {seed} and {task} in a string value: e.g. each seed's own warm-started model as the starting point
    run_task = str(values.get("task", ""))
    values = {k: v.replace("{seed}", str(seed)).replace("{task}", run_task) if isinstance(v, str) else v
              for k, v in values.items()}
    return method, values


def _run_base(method_values: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    values = {k: v for k, v in method_values.items() if k not in ("max_generated_tokens", "eval_at_tokens")}
    trainer = build_trainer(make_config("grpo", overrides=values), console=lambda s: None)
    ev = trainer.evaluate()
    del trainer
    return [{"step": 0, "tokens": 0, **ev}]


def _evals_from_metrics(run_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if any(k.startswith("eval/") for k in r):
                rows.append({"step": r["step"], "tokens": int(r.get("tokens/cumulative", 0)),
                             **{k: v for k, v in r.items() if k.startswith("eval/")}})
    return rows


def all_runs(cfg: CompareConfig) -> list[tuple[int, str, str]]:
    """Every (seed, task, run name) of the study, seed-major: a study stopped part-way has every
    method on every task for its first seeds."""
    return [(s, t, n) for s in cfg.seeds for t in cfg.task_names for n in cfg.methods]


def finished_runs(cfg: CompareConfig) -> list[dict[str, Any]]:
    """The results of the runs that have finished (their result.json), without running anything."""
    results = []
    for seed, task, name in all_runs(cfg):
        done = cfg.run_dir(task, name, seed) / "result.json"
        if done.exists():
            results.append({"task": task, **json.loads(done.read_text())})
    return results


def run_estimates(cfg: CompareConfig) -> dict[tuple[int, str, str], float] | None:
    """The compute each unfinished run still needs, at the pace of the finished ones on this machine.

    Each unfinished run is estimated by the mean wall time of the finished runs of the same task
    and name (other seeds), else of the same name on any task, else of every finished run of its
    task; an interrupted run's sittings so far (its ``wall_time.json``) are taken off its estimate.
    The finished runs are those of every seed in ``output_dir``, also those a report on some seeds
    leaves out (``seeds: [1, 2]`` goes by seed 0's pace too).
    -> ``{(seed, task, name): seconds}`` for every unfinished run, or None before any run has finished."""
    walls: dict[tuple[str, str], list[float]] = {}
    left = []
    for task in cfg.task_names:
        for name in cfg.methods:
            seed_dir = re.compile(rf"{re.escape(name)}-s\d+")  # not NAME-s2-s0 of a name NAME-s2
            for done in cfg.run_dir(task, name, 0).parent.glob(f"{glob.escape(name)}-s*/result.json"):
                if seed_dir.fullmatch(done.parent.name):
                    wall = json.loads(done.read_text()).get("wall_s")
                    if wall is not None:
                        walls.setdefault((task, name), []).append(wall)
    for seed, task, name in all_runs(cfg):
        run_dir = cfg.run_dir(task, name, seed)
        if (run_dir / "result.json").exists():
            continue
        spent = run_dir / "wall_time.json"
        left.append((seed, task, name, json.loads(spent.read_text()).get("total_s", 0.0) if spent.exists() else 0.0))
    if not walls:
        return None

    def mean_of(keep: Callable[[tuple[str, str]], bool]) -> float | None:
        values = [w for key, ws in walls.items() if keep(key) for w in ws]
        return statistics.mean(values) if values else None

    estimates = {}
    for seed, task, name, spent in left:
        guess = next(g for g in (mean_of(lambda k: k == (task, name)), mean_of(lambda k: k[1] == name),
                                 mean_of(lambda k: k[0] == task), mean_of(lambda k: True)) if g is not None)
        estimates[(seed, task, name)] = max(guess - spent, 0.0)
    return estimates


def time_left(cfg: CompareConfig) -> dict[str, Any] | None:
    """The compute the unfinished runs still need in all (:func:`run_estimates`).
    -> ``{"seconds", "runs"}`` (unfinished runs), or None before any run has finished."""
    estimates = run_estimates(cfg)
    if estimates is None:
        return None
    return {"seconds": sum(estimates.values()), "runs": len(estimates)}


def run_id(cfg: CompareConfig, task: str, name: str, seed: int) -> str:
    """A run's name in messages and ``--only``: ``TASK/NAME-sSEED`` (``NAME-sSEED`` with one task)."""
    return f"{task}/{name}-s{seed}" if cfg.tasks else f"{name}-s{seed}"


def select_runs(cfg: CompareConfig, only: list[str] | None) -> set[tuple[int, str, str]]:
    """The (seed, task, name) runs a sitting may train: every run, or those matching a pattern of
    ``only``. A pattern is a shell-style glob matched against the run's name (``rltf-sd``,
    ``rltf-sd*``), its ``NAME-sSEED`` and its ``TASK/NAME-sSEED`` (``fact_summary/*-s1``).
    A pattern that matches no run is an error (a misspelt name would otherwise train nothing)."""
    runs = all_runs(cfg)
    if not only:
        return set(runs)
    chosen = set()
    for pattern in only:
        hits = {(s, t, n) for s, t, n in runs
                if any(fnmatch.fnmatchcase(key, pattern) for key in (n, f"{n}-s{s}", f"{t}/{n}-s{s}"))}
        if not hits:
            examples = ", ".join(run_id(cfg, t, n, s) for s, t, n in runs[:3])
            raise ConfigError(f"--only {pattern!r} matches no run of this study (runs are named like {examples})")
        chosen |= hits
    return chosen


class Sitting:
    """One sitting's wall-clock seconds in the run's ``wall_time.json``, written when the sitting
    starts and rewritten every ``every_s`` seconds while it lasts, so a sitting that is killed
    (a paused study) still counts, to within ``every_s``. A resumed run has several sittings."""

    def __init__(self, run_dir: Path, every_s: float = 30.0):
        self.path, self.every_s, self.started = run_dir / "wall_time.json", every_s, time.monotonic()
        old = json.loads(self.path.read_text()) if self.path.exists() else {"every_sitting": True}
        self.before, self.kept = old.get("sittings_s", []), {k: v for k, v in old.items() if k not in
                                                                ("sittings_s", "total_s", "every_sitting")}
        # False: the file predates killed sittings being counted (tools/backfill_wall_time.py)
        self.every_sitting = bool(old.get("every_sitting", False))
        self.tick()

    def tick(self) -> float:
        """Record the seconds so far; -> the run's total over its sittings."""
        sittings = [*self.before, round(time.monotonic() - self.started, 1)]
        total = round(sum(sittings), 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sittings_s": sittings, "total_s": total,
                                   "every_sitting": self.every_sitting, **self.kept}) + "\n")
        tmp.replace(self.path)
        return total

    def wait(self, proc: subprocess.Popen) -> int:
        """Wait for ``proc``, ticking meanwhile; -> its exit code."""
        while True:
            try:
                return proc.wait(timeout=self.every_s)
            except subprocess.TimeoutExpired:
                self.tick()


def _train(method: str, values: dict[str, Any], run_dir: Path, sitting: Sitting,
           label: str) -> list[dict[str, Any]]:
    """One run as a ``rltf train`` subprocess (resumed from its last checkpoint); -> its evaluations."""
    from rltf.engine.checkpoint import list_checkpoints  # (torch and transformers: not for --report-only)

    recipe = run_dir / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(values, sort_keys=False))
    cmd = [sys.executable, "-m", "rltf", "train", method, "--config", str(recipe)]
    if list_checkpoints(run_dir):
        cmd += ["--resume", str(run_dir)]
    with (run_dir / "train.log").open("a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = sitting.wait(proc)
        finally:
            if proc.poll() is None:  # compare itself was interrupted: do not leave an orphan
                proc.terminate()
    if code != 0:
        raise ConfigError(f"run {label} failed (exit {code}); see {run_dir / 'train.log'}")
    return _evals_from_metrics(run_dir)


def run_all(cfg: CompareConfig, console: Callable[[str], None] = print, only: list[str] | None = None,
            time_limit_s: float | None = None) -> list[dict[str, Any]]:
    """Train the unfinished runs in order; -> the results of every finished run (earlier ones too).

    ``only``: train just the runs these patterns select (:func:`select_runs`). ``time_limit_s``:
    start a run only if its estimate (:func:`run_estimates`) fits in what is left of the limit, so
    a sitting with an hour left trains the runs that can finish in it; a run without an estimate
    yet (nothing finished) starts. A run that has started is not stopped at the limit."""
    results = []
    runs = all_runs(cfg)
    chosen = select_runs(cfg, only)
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    for number, (seed, task, name) in enumerate(runs, 1):
        run_dir = cfg.run_dir(task, name, seed)
        where = f"{task}: " if cfg.tasks else ""
        done = run_dir / "result.json"
        if done.exists():
            prune_checkpoints(run_dir, cfg.keep_checkpoints)
            results.append({"task": task, **json.loads(done.read_text())})
            console(f"{where}{name} seed {seed}: done earlier")
            continue
        if (seed, task, name) not in chosen:
            continue
        estimates = run_estimates(cfg)
        if deadline is not None and estimates is not None:
            need, left_s = estimates[(seed, task, name)], deadline - time.monotonic()
            if need > left_s:
                console(f"{where}{name} seed {seed}: not started: needs about {hours(need)}, "
                        f"{hours(max(left_s, 0.0))} of the time limit left")
                continue
        pace = ""
        if estimates is not None:
            pace = f"; about {hours(sum(estimates.values()))} of compute left at the finished runs' pace"
        run_dir.mkdir(parents=True, exist_ok=True)
        sitting = Sitting(run_dir)
        method, values = run_config(cfg, name, seed, run_dir, task)
        console(f"{where}{name} seed {seed}: running {method} (run {number} of {len(runs)}{pace}; "
                f"log: {run_dir / 'train.log'})")
        if method == "base":
            evals = _run_base(values, run_dir)
        else:
            evals = _train(method, values, run_dir, sitting, label=f"{where}{name} seed {seed}")
        wall = sitting.tick()
        result = {"task": task, "name": name, "method": method, "seed": seed, "evals": evals, "wall_s": wall}
        done.write_text(json.dumps(result, indent=1) + "\n")
        prune_checkpoints(run_dir, cfg.keep_checkpoints)
        results.append(result)
    return results


def prune_checkpoints(run_dir: Path, keep: str) -> None:
    """What a finished run keeps of its checkpoints (``keep_checkpoints``): ``all``; ``model``, the last
    checkpoint without its optimizer and trainer state (``trainer_state.pt``: only a resume needs it),
    the earlier ones deleted; ``none``. A study's results are in ``result.json`` and ``metrics.jsonl``;
    two full checkpoints a run (~3 GB for a 135M model in fp32) fill a disk within a few dozen runs."""
    if keep == "all":
        return
    from rltf.engine.checkpoint import discard_checkpoint, list_checkpoints

    found = list_checkpoints(run_dir, with_state_only=False)  # a pruned last one has no trainer state
    for checkpoint in found[:-1] if keep == "model" else found:
        discard_checkpoint(checkpoint)  # renamed first: a deletion cut short leaves no half checkpoint
    if keep == "model" and found:
        (Path(found[-1]) / "trainer_state.pt").unlink(missing_ok=True)
