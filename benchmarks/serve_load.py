"""Load on `rltf serve`: 50 concurrent clients x 20 chat requests on 127.0.0.1, batched vs one at a time.

    python benchmarks/serve_load.py [--model smollm2-135m] [--max-tokens 16] [--out benchmarks/serve_load.json]

Runs the server in this process on a free loopback port, then (1) the load test with request
batching (max_batch 32) and (2) the same clients with max_batch 1 (one generation per request,
the server's behaviour before batching; 4 requests per client by default, as it is slow), and prints status counts, latency percentiles and
requests/s. The machine's fp32 matmul peak is measured in the same run, for context.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import matmul_flops  # noqa: E402

from rltf.models import load_model_and_tokenizer  # noqa: E402
from rltf.models.hf_backend import HFBackend  # noqa: E402
from rltf.serve.load import load_test  # noqa: E402
from rltf.serve.server import make_server  # noqa: E402


def run(model: str, max_batch: int, clients: int, requests: int, max_tokens: int) -> dict:
    backend = HFBackend(*load_model_and_tokenizer(model), batch_size=max_batch)
    server = make_server(backend, model, port=0, max_queue=4 * clients, max_batch=max_batch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = {"model": model, "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
            "max_tokens": max_tokens, "temperature": 1.0}
    try:
        result = load_test(f"http://127.0.0.1:{server.server_address[1]}/v1", body, clients, requests, timeout=600)
    finally:
        server.shutdown()
        server.server_close()
    result["backend_calls"] = server.state.engine.batches
    result["max_batch"] = max_batch
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--baseline-requests", type=int, default=4,
                    help="requests per client of the one-at-a-time run (it is slow; throughput is per second)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    peak = matmul_flops("float32")
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
                      f"{torch.__version__}, {torch.get_num_threads()} threads",
           "matmul_fp32_tflops": peak / 1e12, "args": vars(args), "runs": {}}
    for name, batch, requests in (("batched", 32, args.requests), ("one_at_a_time", 1, args.baseline_requests)):
        t = time.perf_counter()
        r = run(args.model, batch, args.clients, requests, args.max_tokens)
        out["runs"][name] = r
        lat = r["latency_s"]
        print(f"{name:14s} {r['statuses']} lost {r['lost']}; {r['requests_per_s']:.1f} req/s; latency p50 "
              f"{lat['p50']:.2f} s, p90 {lat['p90']:.2f} s, p99 {lat['p99']:.2f} s; {r['backend_calls']} backend "
              f"calls; {time.perf_counter() - t:.0f} s")
    ratio = out["runs"]["batched"]["requests_per_s"] / out["runs"]["one_at_a_time"]["requests_per_s"]
    out["throughput_ratio_batched_over_one_at_a_time"] = ratio
    print(f"matmul fp32 peak {peak / 1e12:.2f} TFLOP/s; batched / one-at-a-time throughput: {ratio:.1f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
