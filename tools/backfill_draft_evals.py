"""Draft revision use (``eval_drafts``) for study runs that finished before it existed: their final
checkpoint revises the initial model's wrong greedy answers with each feedback kind, and the
``eval/draft_*`` metrics are added to the run's last evaluation in result.json (marked
``draft_backfilled``). Only the final budget point can be filled: earlier weights are not kept.
A base run's drafts are its own answers, so its draft metrics are its own revision metrics.

    python tools/backfill_draft_evals.py runs/study-feedback            # every finished run lacking them
    python tools/backfill_draft_evals.py runs/study-feedback --own      # see below

``--own``: runs that finished before ``eval/fixed_only/*`` was logged have only the counts of their
own wrong answers each feedback fixed, so their McNemar p is a bound where both fixed some (when one
fixed none, the counts settle the pairs). The final checkpoint repeats
its last revision evaluation (greedy); when the counts it gets are the logged ones, the discordant
pairs it finds are added (marked ``fixed_only_backfilled``), else the run is reported and left as is.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rltf.eval.compare_stats import discordant_pairs
from rltf.models.backend import SamplingParams
from rltf.rollout.evaluation import evaluate
from rltf.methods import build_trainer, make_config
from rltf.engine.held_out import as_draft_metrics
from rltf.models.loading import list_checkpoints


def greedy_trainer(method: str, recipe: Path, checkpoint: Path | None = None):
    """A quiet trainer of ``method`` from ``recipe`` (resumed from ``checkpoint``, else the initial
    model) and the greedy sampling of its evaluations -> (trainer, params)."""
    trainer = build_trainer(make_config(method, recipe=recipe), console=lambda s: None,
                            resume=str(checkpoint) if checkpoint else None)
    c = trainer.config
    return trainer, SamplingParams(max_new_tokens=c.max_new_tokens or trainer.task.max_new_tokens, temperature=0.0)


def final_checkpoint(run_dir: Path, step: int) -> Path | None:
    """The run's last checkpoint when it is the one of its last evaluation's ``step``, else None (said)."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints or int(checkpoints[-1].name.split("-")[-1]) != step:
        print(f"{run_dir}: no checkpoint of the last evaluation's step {step}: skipped")
        return None
    return checkpoints[-1]


def drafts_of(task_dir: Path, recipe: Path) -> dict[str, str]:
    """The initial model's greedy answers to the held-out prompts of this task (computed once, kept
    in TASK_DIR/initial_drafts.json)."""
    path = task_dir / "initial_drafts.json"
    if not path.exists():
        trainer, params = greedy_trainer("grpo", recipe)
        result = evaluate(trainer.task, trainer.rollout_backend(), n=trainer.config.eval_n, seed=12345, params=params,
                          split="eval", keep_first_answers=True)
        path.write_text(json.dumps(result["first_answers"], indent=1) + "\n")
    return json.loads(path.read_text())


def backfill(run_dir: Path) -> None:
    """One run (its own process: each vLLM engine stays in memory until its process ends)."""
    done = run_dir / "result.json"
    result = json.loads(done.read_text())
    last = result["evals"][-1]
    if result["method"] == "base":  # the drafts are its own answers
        last.update(as_draft_metrics(last))
    else:
        checkpoint = final_checkpoint(run_dir, last["step"])
        if checkpoint is None:
            return
        recipe = run_dir / "recipe.yaml"
        drafts = drafts_of(run_dir.parent, recipe)
        trainer, params = greedy_trainer(result["method"], recipe, checkpoint)
        last.update(trainer.evaluate_revisions(params, drafts=drafts, prefix="draft_"))
    last["draft_backfilled"] = True
    done.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{run_dir}: draft revision use {last.get('eval/draft_revision_use')}", flush=True)


def backfill_own(run_dir: Path) -> None:
    """The discordant pairs of the run's own wrong answers at its last evaluation, if it reproduces."""
    done = run_dir / "result.json"
    result = json.loads(done.read_text())
    last = result["evals"][-1]
    checkpoint = final_checkpoint(run_dir, last["step"])
    if checkpoint is None:
        return
    trainer, params = greedy_trainer(result["method"], run_dir / "recipe.yaml", checkpoint)
    again = trainer.evaluate_revisions(params)
    keys = [k for k in again if k.startswith(("eval/wrong_first/", "eval/fix_rate/"))]
    differ = {k: (last.get(k), again[k]) for k in keys if last.get(k) is None or abs(last[k] - again[k]) > 1e-9}
    if differ:
        print(f"{run_dir}: the repeat does not reproduce the logged counts (logged, now): {differ}; left as is")
        return
    last.update({k: v for k, v in again.items() if k.startswith("eval/fixed_only/")}, fixed_only_backfilled=True)
    done.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{run_dir}: reproduced; fixed only with the critique / only with correctness: "
          f"{again['eval/fixed_only/critic']:.0f} / {again['eval/fixed_only/correctness']:.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output_dir", nargs="?", help="a compare output_dir (its runs/TASK/NAME-sSEED)")
    ap.add_argument("--run", help="backfill this one run directory (what the loop runs in a subprocess)")
    ap.add_argument("--own", action="store_true", help="the discordant pairs of the runs' own wrong answers instead")
    args = ap.parse_args()
    if args.run:
        (backfill_own if args.own else backfill)(Path(args.run))
        return
    for done in sorted(Path(args.output_dir).glob("runs/*/*/result.json")):
        last = json.loads(done.read_text())["evals"][-1]
        if args.own:
            wrong = last.get("eval/wrong_first/critic", 0)
            fixes = [round(last.get(f"eval/fix_rate/{k}", 0.0) * wrong) for k in ("critic", "correctness")]
            needed = discordant_pairs(last, *fixes) is None  # not logged, and the counts leave them open
        else:
            needed = not any(k.startswith("eval/draft_") for k in last)
        if needed:
            subprocess.run([sys.executable, __file__, "--run", str(done.parent)] + ["--own"] * args.own, check=True)


if __name__ == "__main__":
    main()
