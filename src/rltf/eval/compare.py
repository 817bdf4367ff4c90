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
sittings) is in ``wall_time.json`` and the report.

Significance: at each budget point, each method against the baseline with a paired t-test over the
seeds both have (the same seed gives both methods the same prompts and evaluation set); with few
seeds the test has little power, and the tables say so with the number of pairs. Where runs evaluate
revisions with the critic and with correctness-only feedback, the report adds the direct test of
feedback use: the wrong first answers each fixed, pooled over seeds, with the one-sided exact
McNemar p that the critique fixes more (:func:`feedback_use`).
"""
from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from rltf.errors import ConfigError
from rltf.eval.compare_report import markdown, plot
from rltf.stats import mcnemar_lower_bound, mcnemar_one_sided, paired_t_test
from rltf.trainers import build_trainer, make_config
from rltf.trainers.checkpoint import list_checkpoints
from rltf.trainers.config_fields import read_yaml_mapping
from rltf.trainers.methods import METHODS

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


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
             "baseline", "common"}
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
                        tasks=[str(t) for t in data.get("tasks", [])], baseline=data.get("baseline"))
    if cfg.budget_tokens < 1:
        raise ConfigError("budget_tokens must be positive")
    if cfg.baseline is None and "grpo" in cfg.methods:
        cfg.baseline = "grpo"
    if cfg.baseline is not None and cfg.baseline not in cfg.methods:
        raise ConfigError(f"{path}: baseline {cfg.baseline!r} is not one of the methods ({', '.join(cfg.methods)})")
    return cfg


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


def _add_wall_time(run_dir: Path, seconds: float) -> float:
    """Add one sitting's wall-clock seconds to the run's total (a resumed run has several); -> total."""
    path = run_dir / "wall_time.json"
    sittings = json.loads(path.read_text())["sittings_s"] if path.exists() else []
    sittings.append(round(seconds, 1))
    path.write_text(json.dumps({"sittings_s": sittings, "total_s": round(sum(sittings), 1)}) + "\n")
    return round(sum(sittings), 1)


def run_all(cfg: CompareConfig, console: Callable[[str], None] = print) -> list[dict[str, Any]]:
    results = []
    for seed, task, name in all_runs(cfg):
        run_dir = cfg.run_dir(task, name, seed)
        where = f"{task}: " if cfg.tasks else ""
        done = run_dir / "result.json"
        if done.exists():
            results.append({"task": task, **json.loads(done.read_text())})
            console(f"{where}{name} seed {seed}: done earlier")
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        method, values = run_config(cfg, name, seed, run_dir, task)
        console(f"{where}{name} seed {seed}: running {method} (log: {run_dir / 'train.log'})")
        if method == "base":
            evals = _run_base(values, run_dir)
            wall = _add_wall_time(run_dir, time.monotonic() - started)
        else:
            recipe = run_dir / "recipe.yaml"
            recipe.write_text(yaml.safe_dump(values, sort_keys=False))
            cmd = [sys.executable, "-m", "rltf", "train", method, "--config", str(recipe)]

            if list_checkpoints(run_dir):
                cmd += ["--resume", str(run_dir)]
            with (run_dir / "train.log").open("a") as log:
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
            wall = _add_wall_time(run_dir, time.monotonic() - started)
            if code != 0:
                raise ConfigError(f"run {where}{name} seed {seed} failed (exit {code}); see {run_dir / 'train.log'}")
            evals = _evals_from_metrics(run_dir)
        result = {"task": task, "name": name, "method": method, "seed": seed, "evals": evals, "wall_s": wall}
        done.write_text(json.dumps(result, indent=1) + "\n")
        results.append(result)
    return results


def eval_at(evals: list[dict[str, Any]], point: int) -> dict[str, Any] | None:
    """The evaluation that stands for a budget point: the first whose token count reached it (the base
    model's single evaluation stands for every point); None if the run has not got there."""
    if len(evals) == 1 and evals[0]["tokens"] == 0:
        return evals[0]
    return next((e for e in evals if e["tokens"] >= point), None)


def at_points(evals: list[dict[str, Any]], points: list[int], metric: str) -> dict[int, tuple[float, int] | None]:
    """The metric at each budget point (:func:`eval_at`) -> {point: (value, tokens) or None}."""
    key = f"eval/{metric}"
    out: dict[int, tuple[float, int] | None] = {}
    for p in points:
        hit = eval_at(evals, p)
        if hit is not None and key not in hit:
            raise ConfigError(f"metric {metric!r} not logged; available: "
                              + ", ".join(k[5:] for k in hit if k.startswith("eval/")))
        out[p] = None if hit is None else (float(hit[key]), int(hit["tokens"]))
    return out


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval over seeds (nan for one seed)."""
    m = statistics.mean(values)
    if len(values) < 2:
        return m, float("nan")
    return m, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def metric_table(cfg: CompareConfig, results: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """Per run name: the metric at each budget point over seeds (mean, 95 % interval, values by seed).
    A metric a run did not log at a point (e.g. revision_use of a run without wrong answers) is left out."""
    table: dict[str, dict[str, Any]] = {}
    for name in cfg.methods:
        runs = [r for r in results if r["name"] == name]
        per_point = {}
        for p in cfg.points:
            found = []
            for r in runs:
                try:
                    hit = at_points(r["evals"], [p], metric)[p]
                except ConfigError:
                    if metric == cfg.metric:
                        raise
                    hit = None
                if hit is not None:
                    found.append((r["seed"], *hit))
            if not found:
                continue
            mean, half = interval([v for _, v, _ in found])
            per_point[str(p)] = {"mean": mean, "ci95_half_width": half, "n_seeds": len(found),
                                 "seeds": [s for s, _, _ in found], "values": [v for _, v, _ in found],
                                 "tokens": [t for _, _, t in found]}
        table[name] = {"method": runs[0]["method"] if runs else None, "points": per_point}
    return table


def significance(table: dict[str, dict[str, Any]], baseline: str | None) -> dict[str, dict[str, Any]]:
    """Each run name against ``baseline`` at each point: a paired t-test over the seeds both have."""
    if baseline is None or baseline not in table:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, row in table.items():
        if name == baseline:
            continue
        cells = {}
        for p, cell in row["points"].items():
            base = table[baseline]["points"].get(p)
            if base is None:
                continue
            by_seed = dict(zip(base["seeds"], base["values"]))
            pairs = [(v, by_seed[s]) for s, v in zip(cell["seeds"], cell["values"]) if s in by_seed]
            test = paired_t_test([a for a, _ in pairs], [b for _, b in pairs])
            if test is not None:
                cells[p] = test
        out[name] = cells
    return out


def _fixes(ev: dict[str, Any], kind: str) -> tuple[int, int] | None:
    """(wrong first answers, of them fixed) with ``kind``'s feedback in one evaluation, or None."""
    wrong = ev.get(f"eval/wrong_first/{kind}")
    if wrong is None:
        return None
    return int(wrong), round(ev.get(f"eval/fix_rate/{kind}", 0.0) * wrong)


def feedback_use(cfg: CompareConfig, results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per run name and budget point, pooled over seeds: the wrong first answers, how many the critic's
    critique fixed and how many correctness-only feedback fixed (the same greedy answers, so a paired
    design), and the one-sided exact McNemar p that the critique fixes more. Runs that logged which
    answers each fixed (``eval/fixed_only/*``) give the exact p; otherwise only b - c is known and
    the p is a lower bound (``exact`` False). Names without both evaluations are left out."""
    out: dict[str, dict[str, Any]] = {}
    for name in cfg.methods:
        cells = {}
        for p in cfg.points:
            hits = [ev for r in results if r["name"] == name and (ev := eval_at(r["evals"], p)) is not None]
            pairs = [(ev, _fixes(ev, "critic"), _fixes(ev, "correctness")) for ev in hits]
            pairs = [(ev, c, k) for ev, c, k in pairs if c is not None and k is not None]
            if not pairs:
                continue
            wrong = sum(c[0] for _, c, _ in pairs)
            fixed_c, fixed_k = sum(c[1] for _, c, _ in pairs), sum(k[1] for _, _, k in pairs)
            exact = all("eval/fixed_only/critic" in ev for ev, _, _ in pairs)
            cell = {"runs": len(pairs), "wrong": wrong, "fixed_critic": fixed_c, "fixed_correctness": fixed_k,
                    "exact": exact}
            if exact:
                b = sum(int(ev["eval/fixed_only/critic"]) for ev, _, _ in pairs)
                c = sum(int(ev["eval/fixed_only/correctness"]) for ev, _, _ in pairs)
                cell.update(only_critic=b, only_correctness=c, p=mcnemar_one_sided(b, c))
            else:
                cell["p"] = mcnemar_lower_bound(fixed_c - fixed_k)
            cells[str(p)] = cell
        if cells:
            out[name] = cells
    return out


def summarize(cfg: CompareConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    by_task: dict[str, dict[str, Any]] = {}
    uses: dict[str, dict[str, Any]] = {}
    for task in cfg.task_names:
        runs = [r for r in results if r.get("task", task) == task]
        by_task[task] = {}
        for metric in cfg.all_metrics:
            table = metric_table(cfg, runs, metric)
            by_task[task][metric] = {"table": table, "significance": significance(table, cfg.baseline)}
        uses[task] = feedback_use(cfg, runs)
    wall: dict[str, dict[str, float]] = {}
    for r in results:
        if r.get("wall_s") is not None:
            wall.setdefault(r.get("task", cfg.task_names[0]), {}).setdefault(r["name"], []).append(r["wall_s"])
    first = by_task[cfg.task_names[0]][cfg.metric]
    return {"runs_done": len(results), "runs_total": len(all_runs(cfg)), "metric": cfg.metric,
            "metrics": cfg.all_metrics, "tasks": cfg.task_names, "baseline": cfg.baseline,
            "budget_tokens": cfg.budget_tokens, "points": cfg.points, "seeds": cfg.seeds, "common": cfg.common,
            "methods": cfg.methods, "table": first["table"], "by_task": by_task,
            "feedback_use": {t: u for t, u in uses.items() if u},
            "wall_min": {t: {n: statistics.mean(v) / 60 for n, v in names.items()} for t, names in wall.items()}}


def compare(cfg: CompareConfig, console: Callable[[str], None] = print, run: bool = True) -> dict[str, Any]:
    """Run every run not finished yet (``run=False``: none, report the finished ones), then write
    results.json, results.md and the curves into ``output_dir``."""
    results = run_all(cfg, console) if run else finished_runs(cfg)
    if not results:
        raise ConfigError(f"no finished runs in {cfg.output_dir} yet")
    summary = summarize(cfg, results)
    root = Path(cfg.output_dir)
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
