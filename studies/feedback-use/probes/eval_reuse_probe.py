"""Does a two-round evaluation give the same result when it reuses the single-turn evaluation's
greedy first answers instead of generating them again? (held_out.py reuses them since 2026-12-01.)

For each model: the single-turn greedy evaluation (its first answers kept), then for each feedback
kind the two-round evaluation twice: generating its first answers again (the code before) and given
the single-turn answers. Prints whether the regenerated first answers equal the kept ones, and
whether wrong_first, fixed_ids, verbatim_ids and the per-round accuracy agree.

    python studies/feedback-use/probes/eval_reuse_probe.py METHOD RECIPE [CHECKPOINT ...]   # no checkpoint: the initial model

The recipe's output_dir should be a scratch folder (the trainer is built there).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_models import greedy_trainer  # noqa: E402

from rltf.feedback import build_feedback  # noqa: E402
from rltf.rollout.evaluation import evaluate  # noqa: E402

KEYS = ("wrong_first", "fixed_ids", "verbatim_ids", "per_round_accuracy", "fix_rate")


def probe(method: str, recipe: Path, checkpoint: Path | None) -> dict:
    trainer, params = greedy_trainer(method, recipe, checkpoint)
    c, backend = trainer.config, trainer.rollout_backend()
    common = dict(n=c.eval_n, seed=12345, params=params, split="eval", revision=c.revision_prompt)
    single = evaluate(trainer.task, backend, rounds=1, keep_first_answers=True, **common)
    out = {"model": str(checkpoint or "initial"), "task": trainer.task.name, "accuracy": single["accuracy"]}
    for kind in [k.strip() for k in c.eval_feedback.split(",") if k.strip()]:
        feedback = build_feedback(kind, backend=backend, judge=trainer.judge_config())
        again = evaluate(trainer.task, backend, rounds=2, feedback=feedback, keep_first_answers=True, **common)
        reused = evaluate(trainer.task, backend, rounds=2, feedback=feedback, drafts=single["first_answers"], **common)
        differ = sorted(k for k, v in single["first_answers"].items() if again["first_answers"][k] != v)
        out[kind] = {"first_answers_differ": differ,
                     "same": {k: again[k] == reused[k] for k in KEYS},
                     "again": {k: again[k] for k in ("wrong_first", "fix_rate")},
                     "reused": {k: reused[k] for k in ("wrong_first", "fix_rate")},
                     "seconds": {"again": round(again["timing"]["seconds"], 1),
                                 "reused": round(reused["timing"]["seconds"], 1),
                                 "single": round(single["timing"]["seconds"], 1)}}
    return out


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    method, recipe = argv[0], Path(argv[1])
    for checkpoint in [Path(a) for a in argv[2:]] or [None]:
        print(json.dumps(probe(method, recipe, checkpoint)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
