"""An OpenAI-compatible server for a local model (127.0.0.1 by default).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (also without
the ``/v1`` prefix). Requests from concurrent clients are batched through the generation backend
(:mod:`rltf.serve.engine`); requests and responses follow :mod:`rltf.serve.protocol`. Every bad
input gets an answer in OpenAI's error shape with the matching status; a connection is never
dropped on bad input, and errors the HTTP layer raises itself (a request line or header over the
limit: 414, 431; a malformed request line: 400) are JSON in the same shape, not HTML pages. With
``api_key`` set, every route needs ``Authorization: Bearer <key>`` (compared in constant time).

Slow and idle clients hold bounded resources: at most ``max_connections`` connections are served at
once (a thread each; the next ones get a 503 JSON answer at once and are closed), a request's line,
headers and body must arrive within ``read_timeout`` seconds, and a kept-alive connection that sends
nothing for ``idle_timeout`` seconds is closed. A watchdog enforces both deadlines on the whole
phase, so a client that trickles one byte at a time (slowloris) is cut off too.
"""
from __future__ import annotations

import hmac
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rltf.serve.engine import BatchingEngine, Job, QueueFull
from rltf.serve.protocol import ServeError, parse_chat, parse_completion, response_body, stream_chunks

MAX_BODY = 4 * 1024 * 1024  # bytes of a request body
MAX_CONNECTIONS = 64  # connections served at once (one thread each)
READ_TIMEOUT = 10.0  # seconds to send a request's line, headers and body
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait before its next request


class ServeState:
    """What the handlers share: the backend (through the batching engine), names and limits."""

    def __init__(self, backend, model_name: str, api_key: str | None = None, max_queue: int = 256,
                 max_batch: int = 32, max_tokens_cap: int = 2048):
        self.backend, self.model_name, self.api_key = backend, model_name, api_key
        self.tokenizer = backend.tokenizer
        self.engine = BatchingEngine(backend, max_queue=max_queue, max_batch=max_batch)
        limit = getattr(getattr(backend.model, "config", None), "max_position_embeddings", None)
        self.context = int(limit) if isinstance(limit, int) else None
        self.max_tokens_cap = max_tokens_cap

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def make_handler(state: ServeState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the CLI says where it serves; errors go to the client
            pass

        def setup(self):
            super().setup()
            self.server.watch(self.connection, self.server.read_timeout)  # the first request's deadline

        def handle_one_request(self):
            super().handle_one_request()
            if not self.close_connection:  # kept alive: the next request must start within the idle timeout
                self.server.watch(self.connection, self.server.idle_timeout)

        def parse_request(self):
            ok = super().parse_request()
            if ok:  # the request line and headers are in; the body still counts against read_timeout
                self.server.watch(self.connection, self.server.read_timeout)
            return ok

        def send_error(self, code, message=None, explain=None):
            """The HTTP layer's own errors (414 URI too long, 431 header too large, 400 bad request
            line, 501 unsupported method) in OpenAI's JSON shape instead of an HTML page."""
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "error"
            self.close_connection = True
            if self.request_version == "HTTP/0.9":  # an unreadable request line: answer in HTTP/1.1 anyway
                self.request_version = "HTTP/1.1"
            body = json.dumps(ServeError(code, message or phrase).body()).encode()
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

        # -- plumbing ---------------------------------------------------------------------
        def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _fail(self, err: ServeError) -> None:
            headers = {"Retry-After": "1"} if err.status in (429, 503) else None
            if err.status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            self._send(err.status, err.body(), headers)

        def _authorise(self) -> None:
            if state.api_key is None:
                return
            given = self.headers.get("Authorization", "")
            token = given[7:] if given.startswith("Bearer ") else ""
            if not hmac.compare_digest(token.encode(), state.api_key.encode()):
                raise ServeError(401, "missing or incorrect API key (send Authorization: Bearer <key>)")

        def _route(self) -> str:
            path = self.path.split("?", 1)[0].rstrip("/")
            return path[3:] if path.startswith("/v1/") else path

        def _body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
                raise ServeError(411, "send the body with a Content-Length (chunked bodies are not supported)")
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self.close_connection = True
                raise ServeError(400, "Content-Length is not a number") from None
            if length > MAX_BODY:
                self.close_connection = True  # the body is not read: this connection cannot be reused
                raise ServeError(413, f"request body of {length} bytes is over the {MAX_BODY}-byte limit")
            raw = self.rfile.read(length) if length > 0 else b""
            if len(raw) < length:  # the client closed, or the watchdog cut it off past read_timeout
                self.close_connection = True
                raise ServeError(400, f"the request body ended after {len(raw)} of {length} bytes")
            self.server.watch(self.connection, None)  # the request is in: generation may take its time
            try:
                return json.loads(raw)
            except (ValueError, RecursionError):
                raise ServeError(400, "the request body is not valid JSON") from None

        def _guard(self, work) -> None:
            try:
                self._authorise()
                work()
            except ServeError as err:
                self._fail(err)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as err:  # noqa: BLE001 - a bug must not drop the connection without an answer
                self._fail(ServeError(500, f"internal error: {type(err).__name__}: {err}"))

        # -- routes -----------------------------------------------------------------------
        def do_GET(self):
            def work():
                if self._route() != "/models":
                    raise ServeError(404, f"no route GET {self.path}")
                self._send(200, {"object": "list", "data": [
                    {"id": state.model_name, "object": "model", "created": 0, "owned_by": "rltf"}]})

            self._guard(work)

        def do_POST(self):
            def work():
                route = self._route()
                if route not in ("/chat/completions", "/completions"):
                    raise ServeError(404, f"no route POST {self.path}")
                body = self._body()
                if route == "/chat/completions":
                    request = parse_chat(body, state.backend.chat_prompt_ids, state.max_tokens_cap)
                else:
                    request = parse_completion(body, state.encode, state.max_tokens_cap)
                if request.model != state.model_name:
                    raise ServeError(404, f"the model {request.model!r} does not exist (this server serves "
                                          f"{state.model_name!r})", "model")
                longest = max(len(p) for p in request.prompts) + request.params.max_new_tokens
                if state.context is not None and longest > state.context:
                    raise ServeError(400, f"this model's maximum context length is {state.context} tokens; the "
                                          f"prompt plus max_tokens asks for {longest}", "max_tokens")
                try:
                    future = state.engine.submit(Job(request.prompts, request.n, request.params, request.seed))
                except QueueFull as err:
                    raise ServeError(503, f"the server is busy ({err}); retry later") from None
                gens = future.result()
                if request.stream:
                    self._stream(stream_chunks(request, gens, state.tokenizer, state.model_name))
                else:
                    self._send(200, response_body(request, gens, state.tokenizer, state.model_name))

            self._guard(work)

        def _method_not_allowed(self):
            def work():
                raise ServeError(405, f"method {self.command} is not allowed on {self.path}")

            self._guard(work)

        do_PUT = do_DELETE = do_PATCH = _method_not_allowed

        def _stream(self, chunks: list[dict]) -> None:
            """Server-sent events: one ``data: {chunk}`` per chunk, then ``data: [DONE]``; the
            connection closes after the stream (no Content-Length is known in advance)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


class RltfServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # pending TCP connections: a burst of clients is queued, not refused

    def __init__(self, address, state: ServeState, max_connections: int = MAX_CONNECTIONS,
                 read_timeout: float = READ_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT):
        super().__init__(address, make_handler(state))
        self.state = state
        self.max_connections, self.read_timeout, self.idle_timeout = max_connections, read_timeout, idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._deadlines: dict[socket.socket, float] = {}  # connection -> when to cut it off
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.refused = self.reaped = 0  # counters for tests and load figures
        threading.Thread(target=self._watchdog, name="rltf-serve-watchdog", daemon=True).start()

    def watch(self, connection: socket.socket, seconds: float | None) -> None:
        """Cut ``connection`` off if it is still in this phase after ``seconds`` (None: no deadline)."""
        with self._lock:
            if seconds is None:
                self._deadlines.pop(connection, None)
            else:
                self._deadlines[connection] = time.monotonic() + seconds

    def _watchdog(self) -> None:
        while not self._closing.wait(0.2):
            now = time.monotonic()
            with self._lock:
                late = [c for c, t in self._deadlines.items() if t <= now]
                for c in late:
                    del self._deadlines[c]
            for c in late:
                self.reaped += 1
                try:
                    c.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns; its thread ends
                except OSError:
                    pass

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):  # every slot taken: answer at once, hold nothing
            self.refused += 1
            body = json.dumps(ServeError(503, f"the server is serving {self.max_connections} connections "
                                              "already; retry later").body()).encode()
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.watch(request, None)
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client that went away, or was cut off at a deadline, is not a server error: no traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()
        self.state.engine.close()


def make_server(backend, model_name: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                max_queue: int = 256, max_batch: int = 32, max_connections: int = MAX_CONNECTIONS,
                read_timeout: float = READ_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT) -> RltfServer:
    return RltfServer((host, port), ServeState(backend, model_name, api_key, max_queue, max_batch),
                      max_connections=max_connections, read_timeout=read_timeout, idle_timeout=idle_timeout)
