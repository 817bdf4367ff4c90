"""Base accuracy and base revision use of a model on a task, per instruction type (docs/TASKS.md).

    python studies/warm-start/probes/base_revision_use.py --task constraints1 --per-kind --n 60 \\
        [--model smollm2-135m] [--backend auto] [--output studies/warm-start/archive/base_constraints.json]

For each task spec (with ``--per-kind``: the task restricted to each instruction kind of the
constraint family in turn, ``?kinds=KIND``): greedy single-turn answers to ``n`` held-out prompts;
every wrong one is revised once with the task's critic and once with correctness-only feedback
("Your previous attempt was incorrect."), greedily, the same first answers for both. Revision use =
fixed with the critique minus fixed with "incorrect"; the exact McNemar test on the paired outcomes;
how many revisions hand the draft back verbatim or copy the critique.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rltf.feedback import build_feedback
from rltf.models import load_model_and_tokenizer
from rltf.models.backend import SamplingParams
from rltf.models.engines import build_backend, vllm_options
from rltf.rollout.evaluation import evaluate
from rltf.stats import mcnemar_two_sided
from rltf.tasks import get_task
from rltf.tasks.constraints import DEFAULT_KINDS, INSTRUCTIONS


def measure(spec: str, backend, n: int, revision: str) -> dict:
    task = get_task(spec)
    params = SamplingParams(max_new_tokens=task.max_new_tokens, temperature=0.0)
    first = evaluate(task, backend, n=n, seed=12345, params=params, split="eval", keep_first_answers=True)
    out = {"task": spec, "n": first["n"], "accuracy": first["accuracy"], "metrics": first.get("metrics", {})}
    fixed, verbatim, copied = {}, {}, {}
    for kind in ("critic", "correctness"):
        r = evaluate(task, backend, n=n, seed=12345, params=params, split="eval", rounds=2,
                     feedback=build_feedback(kind), revision=revision, drafts=first["first_answers"])
        fixed[kind], verbatim[kind], copied[kind] = set(r["fixed_ids"]), set(r["verbatim_ids"]), set(r["copied_ids"])
        out["wrong"] = r["wrong_first"]
    b, c = len(fixed["critic"] - fixed["correctness"]), len(fixed["correctness"] - fixed["critic"])
    out.update({f"fixed/{k}": len(v) for k, v in fixed.items()})
    out.update({f"verbatim/{k}": len(v) for k, v in verbatim.items()})
    out.update({f"copied/{k}": len(v) for k, v in copied.items()})
    out.update({"fixed_only/critic": b, "fixed_only/correctness": c, "mcnemar_p": mcnemar_two_sided(b, c),
                "revision_use": (len(fixed["critic"]) - len(fixed["correctness"])) / out["wrong"] if out["wrong"] else None})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="constraints1")
    ap.add_argument("--per-kind", action="store_true")
    ap.add_argument("--all-kinds", action="store_true", help="with --per-kind: every kind, not only the default ones")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--revision", default="paper")
    ap.add_argument("--output")
    args = ap.parse_args()
    model, tokenizer = load_model_and_tokenizer(args.model)
    backend = build_backend(args.backend, model, tokenizer, expected_tokens=10**6, options=vllm_options(args), seed=0)
    kinds = (list(INSTRUCTIONS) if args.all_kinds else list(DEFAULT_KINDS)) if args.per_kind else [None]
    rows = []
    for kind in kinds:
        spec = args.task if kind is None else f"{args.task}?kinds={kind}"
        row = measure(spec, backend, args.n, args.revision)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"model": args.model, "backend": backend.name, "rows": rows},
                                                indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
