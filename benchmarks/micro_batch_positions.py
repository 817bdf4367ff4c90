"""Token positions a training step runs the model on, by micro-batch order (docs/PERFORMANCE.md,
"The two-turn step: micro-batch planning").

Collects one step of ``--method`` (default rltf-fm) on the train_throughput benchmark's job (add2,
2 prompts x 8 samples, <= 64 new tokens, temperature 1, the critic's critiques) and counts, for each
loss term, the positions of its micro-batches cut in collection order and as planned: the shared
prompt prefix once, every row padded to the longest rest of prompt and completion. Counts only (no
timing), so any machine gives the same figures for the same samples.

    python benchmarks/micro_batch_positions.py [--model smollm2-135m] [--method rltf-fm] [--micro-batch-size 16]
"""
from __future__ import annotations

import argparse

from rltf.methods import build_trainer, make_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--method", default="rltf-fm")
    ap.add_argument("--micro-batch-size", type=int, default=16)
    ap.add_argument("--micro-batch-tokens", type=int, default=0)
    args = ap.parse_args()
    cfg = make_config(args.method, overrides=dict(
        model=args.model, task="add2", prompts_per_step=2, group_size=8, max_new_tokens=64, temperature=1.0,
        backend="hf", generation_batch_size=64, eval_at_start=False, output_dir="/tmp/rltf-positions",
        feedback="critic", micro_batch_size=args.micro_batch_size))
    trainer = build_trainer(cfg, console=lambda s: None)
    collected = trainer.method.collect(trainer, trainer.stream.take(cfg.prompts_per_step), trainer.sampling_seed(0))
    batch = trainer.drop_zero_advantage(collected.batch)
    print(f"{args.method}, {args.model}: one step, micro_batch_size {args.micro_batch_size}"
          f"{f', micro_batch_tokens {args.micro_batch_tokens}' if args.micro_batch_tokens else ''}\n")
    print("| term | rows | trained tokens | collected: positions (largest micro-batch) | planned: positions (largest) | planned micro-batches (rows) |")
    print("|---|---|---|---|---|---|")
    totals = [0, 0, 0]
    for kind in sorted(set(batch.kind)):
        rows = batch.of_kind(kind)
        before = [p.model_inputs().n_tokens for p in rows.micro_batches(args.micro_batch_size, order="collected")]
        parts = rows.micro_batches(args.micro_batch_size, args.micro_batch_tokens)
        after = [p.model_inputs().n_tokens for p in parts]
        tokens = int(rows.completion_mask.sum())
        totals = [totals[0] + tokens, totals[1] + sum(before), totals[2] + sum(after)]
        print(f"| {kind} | {len(rows)} | {tokens} | {sum(before)} ({max(before)}) | {sum(after)} ({max(after)}) | "
              f"{', '.join(str(len(p)) for p in parts)} |")
    print(f"| all | {len(batch)} | {totals[0]} | {totals[1]} | {totals[2]} ({totals[2] / totals[1]:.2f}x) | |")


if __name__ == "__main__":
    main()
