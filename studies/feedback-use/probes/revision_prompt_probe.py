"""Does the revision prompt stop the base model from using a critique? (issue 16, before the study)

    python studies/feedback-use/probes/revision_prompt_probe.py [--tasks add2,fact_summary] [--n 64] [--backend vllm]
                                          [--output studies/feedback-use/archive/revision_prompts.json]

For each task and each revision prompt (paper, plain, chat), the untrained default model answers
``n`` problems of the TRAIN split greedily; every wrong answer is revised once with the critic's
critique and once with correctness-only feedback ("your answer was incorrect"). The revision-use
rate is the share of wrong answers the critique fixes minus the share correctness-only feedback
fixes: what the critique's content adds. The study keeps the paper's prompt unless an alternative
is clearly better (train split, so the choice does not touch the held-out set).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rltf.feedback import build_feedback
from rltf.feedback.prompts import REVISION_PROMPTS
from rltf.models import load_model_and_tokenizer
from rltf.models.backend import SamplingParams
from rltf.models.engines import build_backend
from rltf.rollout.evaluation import evaluate
from rltf.tasks import get_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="add2,fact_summary")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--backend", default="vllm")
    p.add_argument("--output", default="studies/feedback-use/archive/revision_prompts.json")
    args = p.parse_args()
    model, tok = load_model_and_tokenizer(args.model)
    backend = build_backend(args.backend, model, tok)
    rows = []
    for name in args.tasks.split(","):
        task = get_task(name)
        params = SamplingParams(max_new_tokens=task.max_new_tokens, temperature=0.0)
        for prompt in REVISION_PROMPTS:
            row = {"task": name, "revision_prompt": prompt, "n": args.n, "split": "train"}
            for kind in ("critic", "correctness"):
                t0 = time.perf_counter()
                result = evaluate(task, backend, n=args.n, seed=0, rounds=2, feedback=build_feedback(kind),
                                  params=params, split="train", revision=prompt)
                row[kind] = {"first_accuracy": result["accuracy"], "wrong_first": result["wrong_first"],
                             "fix_rate": result["fix_rate"], "round2_accuracy": result["per_round_accuracy"][-1],
                             "seconds": time.perf_counter() - t0,
                             "example": result["transcripts"][0] if result["transcripts"] else None}
            fixed = [row[k]["fix_rate"] for k in ("critic", "correctness")]
            row["revision_use"] = None if None in fixed else fixed[0] - fixed[1]
            rows.append(row)
            print(f"{name:<13} {prompt:<6} wrong {row['critic']['wrong_first']:>3}  fixed with critic "
                  f"{row['critic']['fix_rate'] or 0:.3f}  with correctness {row['correctness']['fix_rate'] or 0:.3f}  "
                  f"revision use {row['revision_use'] if row['revision_use'] is not None else float('nan'):+.3f}",
                  flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"model": args.model, "backend": args.backend, "rows": rows}, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
