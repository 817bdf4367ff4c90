"""Is a warm start trained again the same run as the archived one? The decisive study starts from the
warm starts' weights, which a machine change loses (finished runs keep the archive, not the weights),
so a new machine trains them again (`bash studies/warm-start/run.sh NAME`). This compares the new
run's metrics, step by step, with the archive's: the sampled tokens, the first-turn accuracy of the
sampled drafts, the loss and the gradient norm of every training step, every evaluation metric, and
each evaluation's item-level outcomes (which held-out items were right, fixed, handed back).

    python studies/warm-start/verify_rerun.py runs/warm-start/NAME [studies/warm-start/archive/runs/NAME]

Exit status 0 if every compared value agrees (counts exactly, losses within --rtol), 1 otherwise,
with the first steps that differ. Timing metrics are not compared. A run still in progress is
compared over the steps it has.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rltf.tasks.jsonl import read_jsonl

EXACT = ("tokens/generated", "tokens/trained", "accuracy/turn0", "sft/drafts_wrong")
CLOSE = ("loss/sft", "loss/total", "grad_norm")


def read(run: Path) -> dict[int, dict]:
    merged: dict[int, dict] = {}
    for _, row in read_jsonl(run / "metrics.jsonl"):
        merged.setdefault(int(row["step"]), {}).update(row)
    return merged


def compare(new: dict[int, dict], old: dict[int, dict], rtol: float) -> tuple[int, list[str]]:
    """(values compared, differences), over the steps both runs have."""
    compared, diffs = 0, []
    for step in sorted(set(new) & set(old)):
        for key in sorted(set(new[step]) & set(old[step])):
            a, b = new[step][key], old[step][key]
            if key.startswith("time/") or key.endswith("per_s") or not isinstance(b, (int, float)):
                continue
            if key in EXACT or key.startswith("eval/"):
                same = a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12))
            elif key in CLOSE:
                same = math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)
            else:
                continue
            compared += 1
            if not same:
                diffs.append(f"step {step} {key}: now {a!r}, archived {b!r}")
    return compared, diffs


def compare_outcomes(new_run: Path, old_run: Path) -> tuple[int, list[str]]:
    """(records compared, differences): ``eval_outcomes.jsonl`` of the evaluations both runs have, by step,
    over the fields both record (a newer run may record more, e.g. each item's first answer)."""
    def by_step(run: Path) -> dict[int, dict]:
        path = run / "eval_outcomes.jsonl"
        return {int(r["step"]): r for _, r in read_jsonl(path)} if path.exists() else {}

    new, old = by_step(new_run), by_step(old_run)
    diffs = [f"step {step} eval_outcomes: {key} differs" for step in sorted(set(new) & set(old))
             for key in sorted(set(new[step]) & set(old[step])) if new[step][key] != old[step][key]]
    return len(set(new) & set(old)), diffs


def verify(run: Path, archived: Path, rtol: float = 1e-4) -> tuple[str, list[str]]:
    """(a one-line summary, the differences) of a rerun against its archived run, over the steps both have."""
    new, old = read(run), read(archived)
    common = sorted(set(new) & set(old))
    if not common:
        return f"{run} and {archived} have no step in common", ["no step in common"]
    compared, diffs = compare(new, old, rtol)
    records, outcome_diffs = compare_outcomes(run, archived)
    diffs += outcome_diffs
    return (f"{run} vs {archived}: steps {common[0]}-{common[-1]} ({len(common)} in common, archive has "
            f"{len(old)}), {compared} values and {records} evaluations' item outcomes compared, {len(diffs)} differ"), diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("archived", type=Path, nargs="?")
    ap.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance for losses and gradient norms")
    args = ap.parse_args()
    archived = args.archived or Path(__file__).parent / "archive" / "runs" / args.run.name
    summary, diffs = verify(args.run, archived, args.rtol)
    print(summary)
    for d in diffs[:20]:
        print("  " + d)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
