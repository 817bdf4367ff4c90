"""Link each seed's warm-started model for the decisive study's warm arm, checked against the run that
seed's study runs started from (called by ``studies/decisive/run.sh warm``).

``runs/study-decisive/warm-start/TASK-sSEED`` -> ``runs/warm-start/NAME/checkpoint-N/model``. The warm
starts' weights are not committed, so a new machine trains them again (``bash studies/warm-start/run.sh
NAME``), and a rerun is the same model only if it is the same run step for step
(``studies/warm-start/verify_rerun.py``): float sums differ a little between CPUs, and a near-tie in
sampling can turn that into another sampled token and from there another model (seed 1 of the
constraints warm start did, at step 28 of 45, on 2026-12-05). A rerun is linked only once it has every
step its reference has (a model whose final evaluation is still running is not).

The reference a rerun is checked against: ``studies/decisive/warm/warm-starts/NAME/`` where the study
recorded one (the run its runs of that seed actually started from), else the warm-start study's archive
``studies/warm-start/archive/runs/NAME/``. A rerun that differs stops the arm (exit 3; only the warm starts of the runs ``--only`` selects are
checked, so seed 2's rerun does not hold up seed 1's runs), unless
``--allow NAME`` names it and no run of that task and seed exists yet (finished, archived or half
done: each started from the reference's weights); then the rerun becomes the reference
(its ``metrics.jsonl`` and ``eval_outcomes.jsonl`` copied into ``warm/warm-starts/NAME/``, to commit and
to report in docs/RESULTS.md as a dated deviation).

    python studies/decisive/warm_starts.py [--allow NAME[,NAME]] [--only PATTERN ...]  # run.sh passes its flags
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARM = {"constraints-s0": "constraints-critic/checkpoint-45",
        "constraints-s1": "constraints-critic-s1/checkpoint-45",
        "constraints-s2": "constraints-critic-s2/checkpoint-45",
        "add2-s0": "add2-critic/checkpoint-60",
        "add2-s1": "add2-critic-s1/checkpoint-60",
        "add2-s2": "add2-critic-s2/checkpoint-60"}
RECORDED = ("metrics.jsonl", "eval_outcomes.jsonl")


def _verify_rerun():
    path = ROOT / "studies" / "warm-start" / "verify_rerun.py"
    spec = importlib.util.spec_from_file_location("verify_rerun", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference(name: str, root: Path = ROOT) -> Path:
    """The run the study's runs of this warm start are checked against."""
    recorded = root / "studies" / "decisive" / "warm" / "warm-starts" / name
    return recorded if (recorded / "metrics.jsonl").exists() else root / "studies" / "warm-start" / "archive" / "runs" / name


def runs_of(key: str, root: Path = ROOT) -> list[Path]:
    """The warm arm's runs of one task and seed that exist anywhere (in runs/ or the archive, done or not)."""
    task, seed = key.rsplit("-s", 1)
    found = []
    for base in (root / "runs" / "study-decisive" / "warm" / "runs", root / "studies" / "decisive" / "warm" / "archive" / "runs"):
        found += sorted(p for p in (base / task).glob(f"*-s{seed}") if p.is_dir() and any(p.iterdir()))
    return found


def needed(only: list[str], config: Path = ROOT / "studies" / "decisive" / "warm" / "study.yaml") -> set[str]:
    """The TASK-sSEED warm starts the runs that ``rltf compare --only`` selects start from (all without)."""
    from rltf.eval.compare import load_compare_config
    from rltf.eval.compare_runs import select_runs

    return {f"{task}-s{seed}" for seed, task, _ in select_runs(load_compare_config(config), only or None)}


def link_all(allow: set[str], root: Path = ROOT, out=print, keys: set[str] | None = None) -> int:
    """Check and link the warm starts of ``keys`` (all by default) that exist; -> 0, or 3 when a rerun
    differs and may not be used (the others are still checked and linked)."""
    tool = _verify_rerun()
    (root / "runs" / "study-decisive" / "warm-start").mkdir(parents=True, exist_ok=True)
    status = 0
    for key, rel in sorted(WARM.items()):
        if keys is not None and key not in keys:
            continue
        name = rel.split("/")[0]
        run, model = root / "runs" / "warm-start" / name, root / "runs" / "warm-start" / rel / "model"
        if not (model / "config.json").exists():
            out(f"missing {model.relative_to(root)}: train it first (bash studies/warm-start/run.sh {name}); "
                f"runs of {key} will fail")
            continue
        link = root / "runs" / "study-decisive" / "warm-start" / key
        ref = reference(name, root)
        if (ref / "metrics.jsonl").exists():
            new, old = tool.read(run), tool.read(ref)
            if not set(old) <= set(new):
                out(f"{run.relative_to(root)} is not finished (its reference has steps {sorted(set(old) - set(new))[:3]} "
                    f"it lacks): not linked; runs of {key} will fail until it is")
                link.unlink(missing_ok=True)
                continue
            summary, diffs = tool.verify(run, ref)
            out(summary + "".join(f"\n  {d}" for d in diffs[:8]))
            if diffs:
                if name not in allow:
                    out(f"{run.relative_to(root)} differs from {ref.relative_to(root)}: the study's runs of {key} "
                        f"would start from another model than the one its reference describes. Stopped; "
                        f"--allow {name} (ALLOW_DIFFERENT_WARM_START={name}) uses the rerun if no run of {key} exists yet.")
                    link.unlink(missing_ok=True)  # nothing may start from it
                    status = 3
                    continue
                existing = runs_of(key, root)
                if existing:
                    out(f"--allow {name} refused: {len(existing)} run(s) of {key} started from the reference's "
                        f"weights (e.g. {existing[0].relative_to(root)}); a seed's runs must share one starting model.")
                    link.unlink(missing_ok=True)
                    status = 3
                    continue
                dest = root / "studies" / "decisive" / "warm" / "warm-starts" / name
                dest.mkdir(parents=True, exist_ok=True)
                for f in RECORDED:
                    if (run / f).exists():
                        shutil.copyfile(run / f, dest / f)
                out(f"{run.relative_to(root)} is now the reference of the study's runs of {key}: "
                    f"{dest.relative_to(root)} (commit it, and record the deviation in docs/RESULTS.md)")
        fresh = link.with_name(link.name + ".new")
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(model.absolute())
        os.replace(fresh, link)  # atomic: a run starting now sees the old link or the new one
    return status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow", default=os.environ.get("ALLOW_DIFFERENT_WARM_START", ""),
                    help="comma-separated warm-start names whose differing rerun may become the study's reference")
    ap.add_argument("--only", action="append", default=[], metavar="PATTERN[,PATTERN]",
                    help="check just the warm starts these runs start from (rltf compare's --only; other flags are ignored)")
    args, _ = ap.parse_known_args()
    only = [p.strip() for item in args.only for p in item.split(",") if p.strip()]
    from rltf.errors import ConfigError

    try:
        keys = needed(only)
    except ConfigError as e:  # a misspelt --only: rltf compare's own message, no traceback, before anything is linked
        ap.error(str(e))
    sys.exit(link_all({n for n in args.allow.split(",") if n}, keys=keys))


if __name__ == "__main__":
    main()
