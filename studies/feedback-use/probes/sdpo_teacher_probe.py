"""Where does SDPO's teacher disagree with the student? One rollout of SDPO's first step on the
default model (the real trainer code: same teacher contexts, same forwards), then the per-token
log-ratio log p_student - log q_teacher on the student's own tokens, averaged per token string.

Positive = the teacher finds the token less likely than the student does: sampled-token SDPO pushes
it DOWN; negative = pushed up. Used in docs/RESULTS.md to explain SDPO's collapse on add2.

    python studies/feedback-use/probes/sdpo_teacher_probe.py [--task add2] [--prompts 8] [--group 4] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict

import torch

from rltf.methods import build_trainer, make_config
from rltf.engine.forward import completion_logprobs
from rltf.methods.sdpo import teacher_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="add2")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=12, help="tokens listed each way")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = make_config("sdpo", overrides=dict(model=args.model, task=args.task, backend="hf", seed=args.seed,
                                                 prompts_per_step=args.prompts, group_size=args.group,
                                                 output_dir=out, max_steps=1))
        tr = build_trainer(cfg, console=lambda *_: None)
        problems = tr.stream.take(args.prompts)
        collected = tr.method.collect(tr, problems, seed=args.seed)
        batch, metrics = collected.batch, collected.metrics
        sd = batch.of_kind("sd")
        with torch.no_grad(), teacher_model(tr) as teacher:
            student = completion_logprobs(tr.model, sd)
            teacher_lp = completion_logprobs(teacher, sd.with_context())
    ratio = (student - teacher_lp) * sd.completion_mask
    per_token: dict[str, list[float]] = defaultdict(list)
    by_position: dict[int, list[float]] = defaultdict(list)
    first_tokens: dict[str, list[float]] = defaultdict(list)
    for b in range(len(sd)):
        for t in range(int(sd.completion_mask[b].sum())):
            token = tr.tokenizer.decode([int(sd.completion_ids[b, t])])
            per_token[token].append(float(ratio[b, t]))
            by_position[t].append(float(ratio[b, t]))
            if t == 0:
                first_tokens[token].append(float(ratio[b, t]))
    means = {k: (sum(v) / len(v), len(v)) for k, v in per_token.items() if len(v) >= 3}
    ranked = sorted(means.items(), key=lambda kv: kv[1][0])
    report = {
        "task": args.task, "answers": len(sd), "accuracy/turn0": metrics["accuracy/turn0"],
        "mean_log_ratio": float(ratio.sum() / sd.completion_mask.sum()),
        "first_5_positions": [sum(by_position[t]) / len(by_position[t]) for t in range(5) if by_position[t]],
        "first_tokens": {k: (round(sum(v) / len(v), 3), len(v)) for k, v in first_tokens.items()},
        "pushed_down": [(k, round(m, 3), n) for k, (m, n) in ranked[::-1][:args.top]],
        "pushed_up": [(k, round(m, 3), n) for k, (m, n) in ranked[:args.top]],
    }
    print(json.dumps({k: v for k, v in report.items() if not k.startswith("pushed")}, ensure_ascii=False))
    for k in ("pushed_down", "pushed_up"):
        print(k + ": " + ", ".join(f"{tok!r} {m:+.3f} (n {n})" for tok, m, n in report[k]))


if __name__ == "__main__":
    main()
