"""Keep the study's finished runs in the repository, so that a new machine resumes the study where it
stopped (issue 16). ``runs/`` (checkpoints, gigabytes) is not committed and a session's machine may
not be the next one's: on 2026-11-28 a new checkout came without ``runs/``, and seed 0's 21 finished
runs survived only in the committed report.

    python studies/feedback-use/archive.py save       # finished runs -> studies/feedback-use/archive/runs/ (after each sitting)
    python studies/feedback-use/archive.py restore    # studies/feedback-use/archive/runs/ -> runs/ where a run has no result.json
    python studies/feedback-use/archive.py from-report  # once: runs kept only in studies/feedback-use/archive/results.json

Another study keeps its runs with this script too: ``STUDY_ARCHIVE=studies/decisive/warm/archive
python studies/feedback-use/archive.py save studies/decisive/warm/study.yaml`` (the folder that holds
``runs/``, relative to the repository).

What is kept of a finished run: ``result.json`` (what ``rltf compare`` reads), ``wall_time.json``,
``recipe.yaml`` and ``metrics.jsonl`` (its training and evaluation log), a few hundred kB at most.
``from-report`` rebuilds the ``result.json`` of runs that have none from the report's per-seed values
(one seed per run name in that report, so each cell is one run's number): every metric and count the
report reads, at the evaluation that stood for each budget point, and the wall time. It is marked
``"restored_from"``; it has no step numbers and none of the metrics the report does not show.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from rltf.eval.compare import CompareConfig, all_runs, load_compare_config
from rltf.eval.compare_stats import OUTCOMES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the repository: the compare file's output_dir is relative to it
ARCHIVE = ROOT / os.environ.get("STUDY_ARCHIVE", str((HERE / "archive").relative_to(ROOT))) / "runs"
REPORT = HERE / "archive" / "results.json"
KEPT = ("result.json", "wall_time.json", "recipe.yaml", "metrics.jsonl", "eval_outcomes.jsonl")


def archive_dir(task: str, name: str, seed: int) -> Path:
    return ARCHIVE / task / f"{name}-s{seed}"


def save(cfg: CompareConfig) -> int:
    """Copy each finished run's kept files into the archive; -> how many runs were new or changed."""
    n = 0
    for seed, task, name in all_runs(cfg):
        run_dir = cfg.run_dir(task, name, seed)
        if not (run_dir / "result.json").exists():
            continue
        dest = archive_dir(task, name, seed)
        changed = False
        for f in KEPT:
            src = run_dir / f
            if src.exists() and (not (dest / f).exists() or (dest / f).read_bytes() != src.read_bytes()):
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / f)
                changed = True
        n += changed
    return n


def restore(cfg: CompareConfig) -> int:
    """Copy archived runs into the study's output_dir where the run has no result.json; -> how many.
    A half-done run there (checkpoints, no result.json) is replaced: the archived run finished."""
    n = 0
    for seed, task, name in all_runs(cfg):
        src, run_dir = archive_dir(task, name, seed), cfg.run_dir(task, name, seed)
        if not (src / "result.json").exists() or (run_dir / "result.json").exists():
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        for f in KEPT:
            if (src / f).exists():
                shutil.copyfile(src / f, run_dir / f)
        n += 1
    return n


def _cell_value(cell: dict, seed: int) -> tuple[float, int] | None:
    by_seed = dict(zip(cell["seeds"], zip(cell["values"], cell["tokens"])))
    return by_seed.get(seed)


def results_from_report(summary: dict, task: str, name: str, seed: int) -> dict | None:
    """One run's result.json rebuilt from a compare report that holds it (see the module docstring);
    None if the report has no value of it. Raises if the report has several seeds' runs pooled in a
    count (those cannot be split into runs)."""
    tables = summary["by_task"][task]
    first = tables[summary["metric"]]["table"].get(name)
    if not first or not any(_cell_value(c, seed) for c in first["points"].values()):
        return None
    if any(c["n_seeds"] > 1 for c in first["points"].values()):
        raise ValueError(f"{task} {name}: the report pools several seeds (its wall time is not one run's)")
    rows: dict[int, dict] = {}  # tokens -> the evaluation
    point_tokens: dict[str, int] = {}
    for metric, data in tables.items():
        for p, cell in data["table"][name]["points"].items():
            hit = _cell_value(cell, seed)
            if hit is None:
                continue
            value, tokens = hit
            point_tokens.setdefault(p, tokens)
            if point_tokens[p] != tokens:
                raise ValueError(f"{task} {name} s{seed} point {p}: two evaluations ({point_tokens[p]}, {tokens})")
            rows.setdefault(tokens, {"step": None, "tokens": tokens})[f"eval/{metric}"] = value
    counts = (("feedback_use", "", "fixed"), ("draft_feedback_use", "draft_", "fixed"),
              ("draft_verbatim", "draft_", "verbatim"))  # as summarize() computes them
    for key, prefix, outcome in counts:
        rate, only = OUTCOMES[outcome]
        for p, cell in summary.get(key, {}).get(task, {}).get(name, {}).items():
            if p not in point_tokens:
                continue
            if cell["runs"] != 1:
                raise ValueError(f"{task} {name} point {p}: {cell['runs']} runs pooled in the report")
            ev = rows[point_tokens[p]]
            wrong = cell["wrong"]
            for kind, fixed in (("critic", cell["fixed_critic"]), ("correctness", cell["fixed_correctness"])):
                ev[f"eval/{prefix}wrong_first/{kind}"] = wrong
                if wrong:
                    logged = ev.get(f"eval/{prefix}{rate}/{kind}")
                    if logged is not None and round(logged * wrong) != fixed:
                        raise ValueError(f"{task} {name} point {p}: {prefix}{rate}/{kind} {logged} != {fixed}/{wrong}")
                    if logged is None:
                        ev[f"eval/{prefix}{rate}/{kind}"] = fixed / wrong
            if cell["exact"] and "only_critic" in cell:
                ev[f"eval/{prefix}{only}/critic"] = cell["only_critic"]
                ev[f"eval/{prefix}{only}/correctness"] = cell["only_correctness"]
    wall_min = summary.get("wall_min", {}).get(task, {}).get(name)
    method = first["method"]
    return {"task": task, "name": name, "method": method, "seed": seed,
            "evals": [rows[t] for t in sorted(rows)],
            "wall_s": None if wall_min is None else round(wall_min * 60, 1),
            "restored_from": "studies/feedback-use/archive/results.json"}


def from_report(cfg: CompareConfig, summary: dict) -> int:
    """Archive, from the report, the runs the archive does not hold; -> how many."""
    n = 0
    for seed, task, name in all_runs(cfg):
        dest = archive_dir(task, name, seed)
        if (dest / "result.json").exists():
            continue
        result = results_from_report(summary, task, name, seed)
        if result is None:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "result.json").write_text(json.dumps(result, indent=1) + "\n")
        n += 1
    return n


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("save", "restore", "from-report"):
        raise SystemExit(__doc__)
    config = argv[1] if len(argv) > 1 else str(HERE / "study.yaml")
    cfg = load_compare_config(config)
    cfg.output_dir = str(ROOT / cfg.output_dir)
    if argv[0] == "save":
        print(f"archived {save(cfg)} new or changed runs in {ARCHIVE.relative_to(ROOT)}")
    elif argv[0] == "restore":
        print(f"restored {restore(cfg)} runs into {cfg.output_dir}")
    else:
        print(f"rebuilt {from_report(cfg, json.loads(REPORT.read_text()))} runs from {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
