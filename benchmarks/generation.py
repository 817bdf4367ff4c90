"""Tokens/s of rltf's generation backends on the default model (not a test).

    python benchmarks/generation.py [--backend hf,vllm] [--n 64] [--dtype float32]

Generates answers to ``n`` few-shot prompts of the CPU preset add2 with up to 64 new tokens,
greedily and at temperature 1, with each backend on the same prompts and the same model, and
prints tokens/s and the vLLM/HF ratios. ``--hf-variants`` also times the HF backend without the
shared-prefix KV cache and one prompt at a time. Each backend warms up on the same call first
(vLLM's first call allocates and specialises its kernels); engine start is reported apart.
The machine's fp32 matmul peak is measured in the same run (CPUs differ: report ratios).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from machine import cpu_name, matmul_flops
from rltf.models import load_model_and_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.rollout import SamplingParams
from rltf.tasks import get_task


def run(backend, convs, params, seed=0):
    start = time.perf_counter()
    gens = backend.generate(convs, params, seed=seed)
    seconds = time.perf_counter() - start
    tokens = sum(g.num_tokens for g in gens)
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}, gens


def measure(backend, convs, repeats: int) -> dict:
    out = {}
    for name, temperature in (("greedy", 0.0), ("temperature_1", 1.0)):
        params = SamplingParams(max_new_tokens=64, temperature=temperature)
        run(backend, convs, params, seed=99)  # warm-up on the same shapes
        runs = [run(backend, convs, params, seed=k)[0] for k in range(repeats)]
        best = max(runs, key=lambda r: r["tokens_per_s"])
        out[name] = {**best, "runs_tokens_per_s": [r["tokens_per_s"] for r in runs]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="add2")
    ap.add_argument("--backend", default="hf,vllm", help="comma-separated: hf, vllm")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64, help="HF backend: conversations per model.generate call")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per setting (the best is reported)")
    ap.add_argument("--hf-variants", action="store_true", help="also HF without prefix cache and one at a time")
    ap.add_argument("--output", help="write the report as JSON here")
    args = ap.parse_args()
    model, tok = load_model_and_tokenizer(args.model, dtype=args.dtype)
    task = get_task(args.task)
    convs = [task.messages(p) for p in task.problems("eval", args.n, seed=0)]
    report = {"model": args.model, "dtype": args.dtype, "task": args.task, "n": args.n, "max_new_tokens": 64,
              "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "fp32_matmul_tflops": round(matmul_flops() / 1e12, 3)}
    greedy_texts = {}
    for name in args.backend.split(","):
        t0 = time.perf_counter()
        if name == "hf":
            backend = HFBackend(model, tok, batch_size=args.batch_size)
        elif name == "vllm":
            from rltf.models.vllm_backend import VLLMBackend, vllm_available

            if not vllm_available():
                print("vllm: not installed (pip install 'rltf[vllm]'), skipped")
                continue
            backend = VLLMBackend(model, tok)
        else:
            raise SystemExit(f"unknown backend {name!r}")
        start = time.perf_counter() - t0
        report[name] = {"start_s": round(start, 1), **measure(backend, convs, args.repeats)}
        greedy_texts[name] = [g.token_ids for g in run(backend, convs, SamplingParams(max_new_tokens=64,
                                                                                          temperature=0.0))[1]]
        if name == "hf" and args.hf_variants:
            params = SamplingParams(max_new_tokens=64, temperature=0.0)
            backend.prefix_cache = False
            report["hf_greedy_without_prefix_cache"] = run(backend, convs, params)[0]
            backend.prefix_cache, backend.batch_size = True, 1
            report["hf_greedy_one_at_a_time"] = run(backend, convs, params)[0]
        backend.close()
        del backend
    if "hf" in report and "vllm" in report:
        for setting in ("greedy", "temperature_1"):
            report[f"vllm_over_hf_{setting}"] = round(report["vllm"][setting]["tokens_per_s"]
                                                      / report["hf"][setting]["tokens_per_s"], 2)
        same = sum(a == b for a, b in zip(greedy_texts["hf"], greedy_texts["vllm"]))
        report["greedy_outputs_identical"] = f"{same}/{len(convs)}"
    print(json.dumps(report, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
