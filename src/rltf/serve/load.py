"""A bounded load test for an OpenAI-compatible server on this machine: C clients x R requests.

Each client is a thread with its own keep-alive connection sending its requests one after
another. Every request ends as a status code (200, or a refusal such as 429/503) or as "lost"
(no HTTP answer at all); the test counts them and reports latency percentiles of the answers.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def load_test(base_url: str, body: dict, clients: int = 50, requests: int = 20, api_key: str | None = None,
              timeout: float = 120.0, path: str = "/chat/completions") -> dict:
    """Send ``clients * requests`` POSTs of ``body`` to ``base_url + path``; counts and latencies."""
    url = urlsplit(base_url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("load tests target this machine's loopback address only")
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        for _ in range(requests):
            t = time.perf_counter()
            try:
                conn.request("POST", url.path.rstrip("/") + path, body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status: int | str = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = "lost"
                conn.close()
            elapsed = time.perf_counter() - t
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(elapsed)
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {"clients": clients, "requests_per_client": requests, "sent": clients * requests,
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
            "answered": statuses[200], "lost": statuses["lost"], "wall_s": wall,
            "requests_per_s": statuses[200] / wall if wall else 0.0,
            "latency_s": {f"p{int(q * 100)}": percentile(latencies, q) for q in (0.5, 0.9, 0.99)} | {
                "max": latencies[-1] if latencies else float("nan")}}
