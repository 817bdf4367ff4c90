"""An OpenAI-compatible chat-completions server for a local model (127.0.0.1 by default).

Endpoints: ``GET /v1/models`` and ``POST /v1/chat/completions`` (messages, temperature, top_p,
max_tokens, stop, seed). Requests are served one generation at a time.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rltf.rollout.backend import SamplingParams


def make_handler(backend, model_name: str, max_tokens_cap: int = 2048):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; the CLI prints a line per request instead
            pass

        def _send(self, code: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, message: str) -> None:
            self._send(code, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self):
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "rltf"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._error(404, f"no route {self.path}")
            try:
                length = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(length) or b"{}")
                messages = req["messages"]
                if not isinstance(messages, list) or not all(
                        isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in messages):
                    raise ValueError("messages must be a list of {role, content} objects")
                stop = req.get("stop") or ()
                params = SamplingParams(
                    max_new_tokens=min(int(req.get("max_tokens") or 512), max_tokens_cap),
                    temperature=float(req.get("temperature", 1.0)), top_p=float(req.get("top_p", 1.0)),
                    stop=tuple([stop] if isinstance(stop, str) else stop))
            except (ValueError, KeyError, TypeError) as err:
                return self._error(400, f"bad request: {err}")
            with lock:
                gen = backend.generate([[{"role": m["role"], "content": m["content"]} for m in messages]],
                                       params, seed=int(req.get("seed") or 0))[0]
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text},
                             "finish_reason": gen.finish_reason}],
                "usage": {"prompt_tokens": len(gen.prompt_ids), "completion_tokens": gen.num_tokens,
                          "total_tokens": len(gen.prompt_ids) + gen.num_tokens},
            })

    return Handler


def make_server(backend, model_name: str, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(backend, model_name))
    server.daemon_threads = True
    return server
