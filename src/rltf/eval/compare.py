"""``rltf compare``: several methods, one task and model, several seeds, an equal budget of generated
tokens (two-turn methods generate more per prompt, so steps are not a fair unit), and the held-out
metric at fixed budget points. Writes ``results.md``, ``results.json`` and ``curves.png``.

A compare file (YAML)::

    output_dir: runs/compare-cpu-add2
    seeds: [0, 1]
    budget_tokens: 4000            # each run stops at the first step that reaches it
    budget_points: [1000, 2000, 4000]
    metric: accuracy               # eval/<metric>: accuracy, mean_reward, fact_f1, ...
    metrics: [accuracy, revision_use]   # optional: every metric tabulated (the first is `metric`)
    baseline: grpo                 # optional: the run each method is tested against (default grpo)
    contrasts: [[rltf-fm-correctness, rltf-fm]]   # optional: pairs also tested against each other (a - b)
    tasks: [add2, fact_summary]    # optional: every method on every task (runs/TASK/NAME-sSEED)
    common: {model: smollm2-135m, task: add2, eval_n: 64}   # config keys shared by every run
    methods:
      base: {method: base}         # the initial model, evaluated once per seed
      grpo: {method: grpo}
      rltf-fm: {method: rltf-fm}
      rltf-fm-correctness: {method: rltf-fm, feedback: correctness}

Every run is a ``rltf train`` subprocess in ``output_dir/runs/NAME-sSEED`` (its log beside it).
Finished runs (``result.json``) are not repeated; an interrupted run resumes from its checkpoint.
Runs go seed-major (every method on every task for the first seed, then the next), so a study
spread over several sittings stays balanced; ``--report-only`` writes the report from the runs
finished so far (marked partial) and trains nothing. Each run's wall time (summed over its
sittings, an interrupted one included) is in ``wall_time.json`` and the report.
``--only PATTERN[,PATTERN]`` trains just the runs a glob matches (by name, ``NAME-sSEED`` or
``TASK/NAME-sSEED``), and ``--time-limit 1.5h`` starts a run only if its estimate at the finished
runs' pace fits in what is left of the limit; the report is on every finished run either way.

Significance: at each budget point, each method against the baseline with a paired t-test over the
seeds both have (the same seed gives both methods the same prompts and evaluation set); with few
seeds the test has little power, and the tables say so with the number of pairs. Where runs evaluate
revisions with the critic and with correctness-only feedback, the report adds the direct test of
feedback use: the wrong first answers each fixed, pooled over seeds, with the two-sided exact
McNemar p of a difference, either way (:func:`feedback_use`).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from rltf.errors import ConfigError
from rltf.eval.compare_report import hours, markdown, plot
from rltf.eval.compare_stats import contrasts, feedback_use, metric_table, significance
from rltf.trainers import build_trainer, make_config
from rltf.trainers.config_fields import read_yaml_mapping
from rltf.trainers.methods import METHODS

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
             "baseline", "common", "contrasts"}
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
                        contrasts=_contrast_pairs(path, data.get("contrasts") or [], data["methods"]))
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


class _Sitting:
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


def _train(method: str, values: dict[str, Any], run_dir: Path, sitting: _Sitting,
           label: str) -> list[dict[str, Any]]:
    """One run as a ``rltf train`` subprocess (resumed from its last checkpoint); -> its evaluations."""
    from rltf.trainers.checkpoint import list_checkpoints  # (torch and transformers: not for --report-only)

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
        sitting = _Sitting(run_dir)
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
        results.append(result)
    return results


def summarize(cfg: CompareConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    by_task: dict[str, dict[str, Any]] = {}
    uses: dict[str, dict[str, Any]] = {}
    draft_uses: dict[str, dict[str, Any]] = {}
    draft_verbatim: dict[str, dict[str, Any]] = {}
    for task in cfg.task_names:
        runs = [r for r in results if r.get("task", task) == task]
        by_task[task] = {}
        for metric in cfg.all_metrics:
            table = metric_table(cfg, runs, metric)
            by_task[task][metric] = {"table": table, "significance": significance(table, cfg.baseline),
                                     "contrasts": contrasts(table, cfg.contrasts)}
        uses[task] = feedback_use(cfg, runs)
        draft_uses[task] = feedback_use(cfg, runs, prefix="draft_")
        draft_verbatim[task] = feedback_use(cfg, runs, prefix="draft_", outcome="verbatim")
    wall: dict[str, dict[str, float]] = {}
    estimated: dict[str, int] = {}
    for r in results:
        if r.get("wall_s") is not None:
            task = r.get("task", cfg.task_names[0])
            wall.setdefault(task, {}).setdefault(r["name"], []).append(r["wall_s"])
            file = cfg.run_dir(task, r["name"], r["seed"]) / "wall_time.json"
            if file.exists() and json.loads(file.read_text()).get("estimated_sittings"):
                estimated[task] = estimated.get(task, 0) + 1
    first = by_task[cfg.task_names[0]][cfg.metric]
    return {"runs_done": len(results), "runs_total": len(all_runs(cfg)), "metric": cfg.metric,
            "metrics": cfg.all_metrics, "tasks": cfg.task_names, "baseline": cfg.baseline,
            "budget_tokens": cfg.budget_tokens, "points": cfg.points, "seeds": cfg.seeds, "common": cfg.common,
            "methods": cfg.methods, "table": first["table"], "by_task": by_task,
            "feedback_use": {t: u for t, u in uses.items() if u},
            "draft_feedback_use": {t: u for t, u in draft_uses.items() if u},
            "draft_verbatim": {t: u for t, u in draft_verbatim.items() if u},
            "wall_min": {t: {n: statistics.mean(v) / 60 for n, v in names.items()} for t, names in wall.items()},
            "wall_estimated_runs": estimated, "time_left": time_left(cfg)}


def compare(cfg: CompareConfig, console: Callable[[str], None] = print, run: bool = True,
            report_dir: str | Path | None = None, only: list[str] | None = None,
            time_limit_s: float | None = None) -> dict[str, Any]:
    """Run every run not finished yet (``run=False``: none, report the finished ones), then write
    results.json, results.md and the curves into ``report_dir`` (default ``output_dir``; another
    one keeps a report on a subset, e.g. ``seeds: [1, 2]``, beside the main one). ``only`` and
    ``time_limit_s`` choose which runs this sitting trains (:func:`run_all`); the report is on every
    finished run."""
    results = run_all(cfg, console, only=only, time_limit_s=time_limit_s) if run else finished_runs(cfg)
    if not results:
        raise ConfigError(f"no finished runs in {cfg.output_dir} yet")
    summary = summarize(cfg, results)
    root = Path(report_dir or cfg.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (root / "results.md").write_text(markdown(summary))
    try:
        plot(summary, root / "curves.png")
        if len(summary["tasks"]) > 1 or len(summary["metrics"]) > 1:  # one figure per task and metric
            for task, metrics in summary["by_task"].items():
                for metric, data in metrics.items():
                    name = f"curves-{task}-{metric}".replace("/", "_").replace(":", "_")
                    plot(summary, root / f"{name}.png", data["table"], metric, title=task)
    except ImportError:
        console("matplotlib is not installed: no curves.png (pip install 'rltf[train]')")
    return summary
