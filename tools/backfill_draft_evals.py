"""Draft revision use (``eval_drafts``) for study runs that finished before it existed: their final
checkpoint revises the initial model's wrong greedy answers with each feedback kind, and the
``eval/draft_*`` metrics are added to the run's last evaluation in result.json (marked
``draft_backfilled``). Only the final budget point can be filled: earlier weights are not kept.
A base run's drafts are its own answers, so its draft metrics are its own revision metrics.

    python tools/backfill_draft_evals.py runs/study-feedback            # every finished run lacking them
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rltf.models.backend import SamplingParams
from rltf.rollout.evaluation import evaluate
from rltf.trainers import build_trainer, make_config
from rltf.trainers.held_out import as_draft_metrics
from rltf.models.loading import list_checkpoints


def drafts_of(task_dir: Path, recipe: Path) -> dict[str, str]:
    """The initial model's greedy answers to the held-out prompts of this task (computed once, kept
    in TASK_DIR/initial_drafts.json)."""
    path = task_dir / "initial_drafts.json"
    if not path.exists():
        trainer = build_trainer(make_config("grpo", recipe=recipe), console=lambda s: None)
        c = trainer.config
        params = SamplingParams(max_new_tokens=c.max_new_tokens or trainer.task.max_new_tokens, temperature=0.0)
        result = evaluate(trainer.task, trainer.rollout_backend(), n=c.eval_n, seed=12345, params=params,
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
        checkpoints = list_checkpoints(run_dir)
        if not checkpoints or int(checkpoints[-1].name.split("-")[-1]) != last["step"]:
            print(f"{run_dir}: no checkpoint of the last evaluation's step {last['step']}: skipped")
            return
        recipe = run_dir / "recipe.yaml"
        drafts = drafts_of(run_dir.parent, recipe)
        trainer = build_trainer(make_config(result["method"], recipe=recipe), console=lambda s: None,
                                resume=str(checkpoints[-1]))
        c = trainer.config
        params = SamplingParams(max_new_tokens=c.max_new_tokens or trainer.task.max_new_tokens, temperature=0.0)
        last.update(trainer.evaluate_revisions(params, drafts=drafts, prefix="draft_"))
    last["draft_backfilled"] = True
    done.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{run_dir}: draft revision use {last.get('eval/draft_revision_use')}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output_dir", nargs="?", help="a compare output_dir (its runs/TASK/NAME-sSEED)")
    ap.add_argument("--run", help="backfill this one run directory (what the loop runs in a subprocess)")
    args = ap.parse_args()
    if args.run:
        backfill(Path(args.run))
        return
    for done in sorted(Path(args.output_dir).glob("runs/*/*/result.json")):
        last = json.loads(done.read_text())["evals"][-1]
        if not any(k.startswith("eval/draft_") for k in last):
            subprocess.run([sys.executable, __file__, "--run", str(done.parent)], check=True)


if __name__ == "__main__":
    main()
