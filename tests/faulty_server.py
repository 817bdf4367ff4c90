"""A scripted OpenAI-compatible server that injects faults, for judge tests (runs on 127.0.0.1)."""
from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyServer:
    """Replies cycle through ``script``: "500", "429", "sleep" (longer than the client timeout),
    "garbage" (not JSON), "nomarker", "empty", "leak" (states the reference answer), "good", "spans"
    (dual feedback JSON quoting "Tom", "Boston" and "Paris"), or "drop" (the connection closed
    without a reply, as by a server that went away)."""

    def __init__(self, script, leak_text="", sleep=3.0):
        self.script, self.leak_text, self.sleep = itertools.cycle(script), leak_text, sleep
        self.requests = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                json.loads(self.rfile.read(length))
                with lock:
                    outer.requests += 1
                    action = next(outer.script)
                if action == "drop":
                    self.close_connection = True
                    return
                if action in ("500", "429"):
                    self.send_response(int(action))
                    self.end_headers()
                    return
                if action == "sleep":
                    time.sleep(outer.sleep)
                    action = "good"
                if action == "garbage":
                    body = b"<html>not json</html>"
                else:
                    content = {"good": "Analysis: hidden.\nCritique: Check the carry in the tens column.",
                               "nomarker": "I think the answer is fine.",
                               "empty": "",
                               "leak": f"Critique: The answer is {outer.leak_text}.",
                               "spans": json.dumps({"textual_feedback": "The city is wrong.", "good_spans": ["Tom"],
                                                    "poor_spans": ["Boston", "Paris"]})}[action]
                    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
