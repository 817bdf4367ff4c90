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
    keep_checkpoints: model        # optional, of a finished run: all (default), model (the last one's
                                   # weights, no optimizer state), none
    common: {model: smollm2-135m, task: add2, eval_n: 64}   # config keys shared by every run
    # in any string value, {seed} and {task} become the run's: e.g. model: runs/warm/{task}-s{seed}/model
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

Significance, two ways. Item by item (:mod:`rltf.eval.item_tests`): each method against the
baseline on the held-out items' first answers, pooled over the seeds both have (exact McNemar for
right/wrong, a paired t-test over items for graded metrics), Holm over the methods at each point.
Over seeds: at each budget point, each method against the baseline with a paired t-test over the
seeds both have (the same seed gives both methods the same prompts and evaluation set); with few
seeds that test has little power, and the tables say so with the number of pairs. Where runs evaluate
revisions with the critic and with correctness-only feedback, the report adds the direct test of
feedback use: the wrong first answers each fixed, pooled over seeds, with the two-sided exact
McNemar p of a difference, either way (:func:`feedback_use`).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Callable

from rltf.errors import ConfigError
from rltf.eval.compare_config import CompareConfig, load_compare_config
from rltf.eval.compare_report import markdown, plot
from rltf.eval.compare_runs import (all_runs, finished_runs, run_all, run_config, run_estimates, run_id,
                                    select_runs, time_left)
from rltf.eval.compare_stats import contrasts, eval_at, feedback_use, metric_table, significance
from rltf.eval.item_tests import item_tests, load_outcomes

__all__ = ["CompareConfig", "all_runs", "compare", "finished_runs", "load_compare_config", "run_all", "run_config",
           "run_estimates", "run_id", "select_runs", "summarize", "time_left"]


def summarize(cfg: CompareConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    by_task: dict[str, dict[str, Any]] = {}
    uses: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    item_pairs: dict[str, dict[str, Any]] = {}
    draft_uses: dict[str, dict[str, Any]] = {}
    draft_verbatim: dict[str, dict[str, Any]] = {}
    for task in cfg.task_names:
        runs = [r for r in results if r.get("task", task) == task]
        by_task[task] = {}
        for metric in cfg.all_metrics:
            table = metric_table(cfg, runs, metric)
            by_task[task][metric] = {"table": table, "significance": significance(table, cfg.baseline),
                                     "contrasts": contrasts(table, cfg.contrasts)}
        evaluations = item_evaluations(cfg, runs, task)
        against = [(name, cfg.baseline) for name in cfg.methods if cfg.baseline is not None and name != cfg.baseline]
        items[task] = item_tests(against, cfg.points, cfg.all_metrics, evaluations)
        item_pairs[task] = item_tests(list(cfg.contrasts), cfg.points, cfg.all_metrics, evaluations, contrasts=True)
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
            "item_tests": {t: v for t, v in items.items() if v},
            "item_contrasts": {t: v for t, v in item_pairs.items() if v},
            "feedback_use": {t: u for t, u in uses.items() if u},
            "draft_feedback_use": {t: u for t, u in draft_uses.items() if u},
            "draft_verbatim": {t: u for t, u in draft_verbatim.items() if u},
            "wall_min": {t: {n: statistics.mean(v) / 60 for n, v in names.items()} for t, names in wall.items()},
            "wall_estimated_runs": estimated, "time_left": time_left(cfg)}


def item_evaluations(cfg: CompareConfig, runs: list[dict[str, Any]], task: str):
    """(name, point) -> per seed of ``cfg.seeds``: the run's item-level first answers at the evaluation that
    stands for the point (its ``eval_outcomes.jsonl``), or None (not finished, not there, not recorded)."""
    loaded: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}

    def evaluations(name: str, point: int) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for seed in cfg.seeds:
            run = next((r for r in runs if r["name"] == name and r["seed"] == seed), None)
            ev = None if run is None else eval_at(run["evals"], point)
            if ev is None or "step" not in ev:
                out.append(None)
                continue
            if (name, seed) not in loaded:
                loaded[name, seed] = load_outcomes(cfg.run_dir(task, name, seed))
            record = loaded[name, seed].get(int(ev["step"]))
            out.append(record.get("first") if record else None)
        return out

    return evaluations


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
