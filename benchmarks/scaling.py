"""Tokens/s of one training process against two (data parallel, and FSDP2-sharded) on this machine
(not a test).

    python benchmarks/scaling.py [--steps 3] [--backends hf,vllm] [--output benchmarks/scaling.json]

The job: single-turn GRPO on the embedded SmolLM2-135M-Instruct, few-shot 2-digit addition, 4
prompts x 8 samples per step (each of 2 processes rolls out 2 prompts), at most 64 new tokens,
temperature 1, full fine-tuning, micro-batches of 8. Each variant runs as its own launch:

- ``1 process``: ``python``, torch on every core;
- ``2 processes DDP``: ``accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml`` (gloo),
  torchrun gives each process one thread (OMP_NUM_THREADS=1);
- ``2 processes FSDP2``: ``recipes/accelerate/fsdp2-cpu-2proc.yaml``;
- ``2 processes ZeRO-2`` / ``ZeRO-3``: DeepSpeed, ``recipes/accelerate/zero{2,3}-cpu-2proc.yaml``.

``--variants`` picks some (always with ``1 process``, the ratios' base, measured in the same run).

One warm-up step is not timed. Reported per variant: generated tokens/s over the whole step, the
time split (rollout, forward/backward, optimizer), and each process's peak resident memory. On a
2-core machine two processes share the same cores, so no speed-up is expected: the figures show
the cost of the communication and of the sharding, not a gain. The fp32 matmul peak with 1 and
with all threads is measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, matmul_flops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"1 process": None, "2 processes DDP": "cpu-2proc.yaml", "2 processes FSDP2": "fsdp2-cpu-2proc.yaml",
            "2 processes ZeRO-2": "zero2-cpu-2proc.yaml", "2 processes ZeRO-3": "zero3-cpu-2proc.yaml"}


def worker(args) -> None:
    """One launch: train, then every process writes its figures (process 0 adds the step timings)."""
    from rltf.methods import build_trainer, make_config

    cfg = make_config("grpo", overrides=dict(
        model=args.model, task="add2", prompts_per_step=4, group_size=8, max_new_tokens=64, temperature=1.0,
        learning_rate=1e-6, backend=args.backend, vllm_kv_cache_gb=1.0, micro_batch_size=8, eval_at_start=False,
        eval_every=0, save_every=0, max_steps=args.steps + 1, output_dir=str(Path(args.out) / "run")))
    trainer = build_trainer(cfg, console=lambda s: None)
    steps = []
    for i in range(args.steps + 1):
        m = trainer.train_step()
        if i:  # the first step warms up (allocations, vLLM's first batch)
            steps.append({k: m.get(k, 0.0) for k in ("time/step", "time/generate", "time/rollout", "time/backward",
                                                     "time/optimizer", "time/weight_sync", "tokens/generated")})
    rank = trainer.dist.rank
    out = {"rank": rank, "world_size": trainer.dist.world_size, "sharded": trainer.sharded,
           "zero_stage": trainer.engine.zero_optimization_stage() if trainer.engine is not None else None,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "steps": steps}
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(out))


def launch(variant: str, backend: str, args) -> dict:
    out = Path(tempfile.mkdtemp(prefix="rltf-scaling-"))
    script = [str(Path(__file__).resolve()), "--worker", "--out", str(out), "--backend", backend,
              "--steps", str(args.steps), "--model", args.model]
    config = VARIANTS[variant]
    cmd = ([sys.executable, *script] if config is None else
           [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(ROOT / "recipes" / "accelerate" / config), *script])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{variant} ({backend}) failed:\n{res.stderr[-3000:]}")
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    steps = ranks[0]["steps"]
    total = {k: sum(s[k] for s in steps) for k in steps[0]}
    return {"variant": variant, "backend": backend, "processes": len(ranks),
            "tokens_per_s": total["tokens/generated"] / total["time/step"],
            "step_s": total["time/step"] / len(steps),
            "rollout_s": total["time/rollout"] / len(steps), "backward_s": total["time/backward"] / len(steps),
            "optimizer_s": total["time/optimizer"] / len(steps), "weight_sync_s": total["time/weight_sync"] / len(steps),
            "generated_tokens_per_step": total["tokens/generated"] / len(steps),
            "peak_rss_gb_per_process": [r["peak_rss_gb"] for r in ranks],
            "peak_rss_gb_total": sum(r["peak_rss_gb"] for r in ranks)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--backends", default="hf,vllm")
    p.add_argument("--variants", default="1 process,2 processes DDP,2 processes FSDP2",
                   help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--output", default="benchmarks/scaling.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--backend", default="hf", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    import torch

    threads = torch.get_num_threads()
    peak_all = matmul_flops("float32")
    torch.set_num_threads(1)
    peak_one = matmul_flops("float32")
    torch.set_num_threads(threads)
    variants = ["1 process", *[v for v in args.variants.split(",") if v != "1 process"]]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    rows = [launch(v, b, args) for b in args.backends.split(",") for v in variants]
    base = {r["backend"]: r for r in rows if r["processes"] == 1}
    print(f"{cpu_name()}, {os.cpu_count()} cores; fp32 matmul peak {peak_all / 1e12:.3f} TFLOP/s on {threads} "
          f"threads, {peak_one / 1e12:.3f} on 1 thread")
    print(f"{'variant':<22} {'backend':<7} {'tok/s':>7} {'vs 1':>6} {'step s':>7} {'rollout':>8} {'fwd/bwd':>8} "
          f"{'optim':>6} {'RSS GB/proc':>12}")
    for r in rows:
        r["speedup_vs_1_process"] = r["tokens_per_s"] / base[r["backend"]]["tokens_per_s"]
        rss = "/".join(f"{x:.2f}" for x in r["peak_rss_gb_per_process"])
        print(f"{r['variant']:<22} {r['backend']:<7} {r['tokens_per_s']:>7.1f} {r['speedup_vs_1_process']:>5.2f}x "
              f"{r['step_s']:>7.2f} {r['rollout_s']:>8.2f} {r['backward_s']:>8.2f} {r['optimizer_s']:>6.2f} {rss:>12}")
    Path(args.output).write_text(json.dumps({
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": threads,
                    "fp32_matmul_flops_all_threads": peak_all, "fp32_matmul_flops_1_thread": peak_one},
        "job": "grpo, smollm2-135m, add2, 4 prompts x 8 samples, <= 64 new tokens, T=1, micro-batch 8",
        "steps_timed": args.steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
