"""``rltf eval``: single-turn accuracy with its 95 % interval, and K-round feedback inference."""
from __future__ import annotations

import json
import sys

from rltf.cli import add_command
from rltf.cli.common import (add_feedback_args, add_model_args, bounded, build_feedback_from_args, load_backend,
                             write_json)
from rltf.eval import evaluate
from rltf.feedback.prompts import REVISION_PROMPTS
from rltf.models.backend import SamplingParams
from rltf.tasks import get_task


def register(sub) -> None:
    p = add_command(sub, "eval")
    add_model_args(p)
    p.add_argument("--task", required=True, help="task spec, e.g. add2, knights_knaves, rg:leg_counting?min_animals=2")
    p.add_argument("--n", type=bounded(int, ge=1), default=64, help="number of held-out problems")
    p.add_argument("--seed", type=bounded(int, ge=0), default=0, help="seed for problem choice and sampling")
    p.add_argument("--split", default="eval", choices=["eval", "train", "all"], help="which problems")
    p.add_argument("--rounds", type=bounded(int, ge=1), default=1,
                   help="K: answer, then K-1 rounds of critique and revision")
    p.add_argument("--temperature", type=bounded(float, ge=0), default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=bounded(float, gt=0, le=1), default=1.0)
    p.add_argument("--max-new-tokens", type=bounded(int, ge=1), help="default: the task's own budget")
    p.add_argument("--revision-prompt", default="paper", choices=REVISION_PROMPTS,
                   help="how a revision is asked for: paper (METHODS §1), plain, or chat (the critique as the "
                        "next user turn)")
    p.add_argument("--output", help="write the result as JSON here (timings go beside it, *.timing.json)")
    add_feedback_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    task = get_task(args.task)
    backend = load_backend(args, expected_tokens=args.n * args.rounds * (args.max_new_tokens or task.max_new_tokens))
    feedback = build_feedback_from_args(args, backend) if (args.rounds > 1 or args.feedback == "judge") else None
    if task.scored_by_judge and task.judge is None:  # open-ended tasks are scored by the judge
        task.judge = feedback or build_feedback_from_args(args, backend)
    params = SamplingParams(max_new_tokens=args.max_new_tokens or task.max_new_tokens,
                            temperature=args.temperature, top_p=args.top_p)
    result = evaluate(task, backend, n=args.n, seed=args.seed, rounds=args.rounds, feedback=feedback,
                      params=params, split=args.split, progress=sys.stderr.isatty(), revision=args.revision_prompt)
    result["model"] = args.model
    timing = result.pop("timing")
    if args.output:  # written before anything is printed: a closed pipe cannot lose the result
        write_json(args.output, result)
        write_json(args.output.removesuffix(".json") + ".timing.json", timing)
    lo, hi = result["ci95"]
    print(f"{task.name}: accuracy {result['accuracy']:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={result['n']}), "
          f"format {result['format_rate']:.2f}, {timing['tokens_per_s']:.0f} tokens/s")
    if result.get("metrics"):
        print(", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()))
    if args.rounds > 1:
        print("per-round accuracy: " + ", ".join(f"{a:.3f}" for a in result["per_round_accuracy"]))
        if result["fix_rate"] is not None:
            print(f"wrong first answers fixed by the revisions: {result['fix_rate']:.3f} of {result['wrong_first']}")
    if "feedback" in result:
        fb = result["feedback"]
        print(f"feedback {fb['provider']}: {fb['requested']} critiques, {fb['failed']} failed and fell back"
              + (f" {json.dumps(fb['reasons'])}" if fb["reasons"] else ""))
    for t in result["transcripts"][:2]:
        print("-" * 60 + f"\n{t['question'][-300:]}\n>>> {t['answers'][0]['text'][:300]}  [reward {t['answers'][0]['reward']}]")
    if args.output:
        print(f"wrote {args.output}")
    return 0
