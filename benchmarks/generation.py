"""Tokens/s of batched vs one-at-a-time generation on the default model (not a test).

    python benchmarks/generation.py [--model smollm2-135m] [--n 32] [--dtype float32]

Generates answers to ``n`` few-shot prompts of the CPU preset add2, greedily, with up to 64 new
tokens, in batches of ``--batch-size`` (with and without reuse of the shared few-shot prefix's KV
cache) and one prompt at a time, and prints the rates and their ratios.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from rltf.models import load_model_and_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.rollout import SamplingParams
from rltf.tasks import get_task


def run(backend, convs, params, batch_size, prefix_cache=True):
    backend.batch_size, backend.prefix_cache = batch_size, prefix_cache
    start = time.perf_counter()
    gens = backend.generate(convs, params, seed=0)
    seconds = time.perf_counter() - start
    tokens = sum(g.num_tokens for g in gens)
    return {"batch_size": batch_size, "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="add2")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    model, tok = load_model_and_tokenizer(args.model, dtype=args.dtype)
    backend = HFBackend(model, tok)
    task = get_task(args.task)
    convs = [task.messages(p) for p in task.problems("eval", args.n, seed=0)]
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.0)
    run(backend, convs[:2], params, 2)  # warm-up
    batched = run(backend, convs, params, args.batch_size)
    no_prefix = run(backend, convs, params, args.batch_size, prefix_cache=False)
    single = run(backend, convs, params, 1)
    report = {"model": args.model, "dtype": args.dtype, "task": args.task, "n": args.n,
              "prompt_tokens_mean": round(sum(len(backend.chat_prompt_ids(c)) for c in convs) / len(convs), 1),
              "batched": batched, "batched_without_prefix_cache": no_prefix, "one_at_a_time": single,
              "speedup_vs_one_at_a_time": round(batched["tokens_per_s"] / single["tokens_per_s"], 2),
              "speedup_of_prefix_cache": round(batched["tokens_per_s"] / no_prefix["tokens_per_s"], 2),
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
