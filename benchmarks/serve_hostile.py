"""`rltf serve` under a connection flood and slowloris clients, on 127.0.0.1 (not a test).

    python benchmarks/serve_hostile.py [--connections 200] [--max-connections 64] [--read-timeout 2]

Opens ``--connections`` idle connections at once (no byte sent), then measures: threads the server
holds, connections answered 503 at once, how long a normal client waits for GET /v1/models, and how
long 20 slowloris connections (one byte every 0.2 s) survive. Loops are bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import socket
import threading
import time

from rltf.models import load_model_and_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.serve.server import make_server


def normal_request(port: int) -> tuple[int, float]:
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = s.recv(65536)
    s.close()
    return int(data.split()[1]), time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--max-connections", type=int, default=64)
    ap.add_argument("--read-timeout", type=float, default=2.0)
    args = ap.parse_args()
    backend = HFBackend(*load_model_and_tokenizer("tiny-random"), batch_size=8)
    srv = make_server(backend, "tiny-random", port=0, max_connections=args.max_connections,
                      read_timeout=args.read_timeout, idle_timeout=args.read_timeout)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    base = threading.active_count()
    t0 = time.monotonic()
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(args.connections)]
    opened = time.monotonic() - t0
    time.sleep(0.5)
    threads = threading.active_count() - base
    status, waited = 0, 0.0
    t1 = time.monotonic()
    while time.monotonic() - t1 < 4 * args.read_timeout + 5:
        status, _ = normal_request(port)
        if status == 200:
            break
        time.sleep(0.1)
    waited = time.monotonic() - t1
    for c in conns:
        c.close()
    time.sleep(args.read_timeout + 0.5)
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    t2, alive = time.monotonic(), list(slow)
    while alive and time.monotonic() - t2 < 4 * args.read_timeout + 5:
        for s in list(alive):
            try:
                s.sendall(b"G")
            except OSError:
                alive.remove(s)
        time.sleep(0.2)
    survived = time.monotonic() - t2
    result = {"connections": args.connections, "max_connections": args.max_connections,
              "read_timeout_s": args.read_timeout, "seconds_to_open": round(opened, 2),
              "server_threads_while_flooded": threads, "answered_503_at_once": srv.refused,
              "normal_client_served_after_s": round(waited, 2), "normal_client_status": status,
              "slowloris_cut_off_after_s": round(survived, 2), "slowloris_left": len(alive)}
    print(json.dumps(result, indent=1))
    srv.shutdown()
    srv.server_close()


if __name__ == "__main__":
    main()
