"""`rltf serve` under hostile clients, on 127.0.0.1 only, every loop bounded in count and time: the HTTP
layer's own errors are OpenAI-shaped JSON; idle and slow (slowloris) connections and a connection
flood hold a bounded number of threads and are cut off at their deadline, while a normal client is
still served."""
import json
import socket
import threading
import time

import pytest

from rltf.models import load_model_and_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.serve.server import make_server

MODEL = "tiny-random"


@pytest.fixture(scope="module")
def backend():
    return HFBackend(*load_model_and_tokenizer(MODEL), batch_size=8)


@pytest.fixture
def server(backend):
    srv = make_server(backend, MODEL, port=0, max_connections=8, read_timeout=1.0, idle_timeout=1.0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)
    return s


def exchange(server, raw: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole answer (the server closes) -> (status, JSON body, headers)."""
    s = connect(server)
    s.sendall(raw)
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head


def get_models(server) -> int:
    """A normal client's request -> its status (200 with the model list when served)."""
    status, body, _ = exchange(server, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status != 200 or body["data"][0]["id"] == MODEL
    return status


@pytest.mark.parametrize("raw, status", [
    (b"GET /v1/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),  # URL over the 64 KiB line limit
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),  # a header line too long
    (b"GET /v1/models HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % k for k in range(120)) + b"\r\n", 431),  # too many
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET /v1/models HTTP/7.0\r\n\r\n", 505),
    (b"BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 501),
])
def test_errors_of_the_http_layer_are_openai_json(server, raw, status):
    got, body, head = exchange(server, raw)
    assert got == status and b"application/json" in head
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["code"] == status


def test_a_connection_flood_holds_bounded_threads_and_normal_clients_are_served(server):
    before = threading.active_count()
    idle = [connect(server) for _ in range(8)]  # every slot taken by clients that send nothing
    time.sleep(0.3)
    flood, refused = [], 0
    for _ in range(60):  # 60 more: each answered 503 at once, none holds a thread
        s = connect(server)
        data = s.recv(4096)
        refused += data.startswith(b"HTTP/1.1 503")
        flood.append(s)
    assert refused == 60 and server.refused == 60
    assert threading.active_count() <= before + 8 + 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:  # the idle ones are cut off at read_timeout (1 s); then slots are free
        if get_models(server) == 200:
            break
        time.sleep(0.1)
    waited = time.monotonic() - t0
    assert 0.5 < waited < 3.0, waited
    for s in idle + flood:
        s.close()


def test_slowloris_is_cut_off_at_the_phase_deadline_not_per_byte(server):
    s = connect(server)
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 40
    t0, cut = time.monotonic(), None
    for byte in request:  # one byte every 0.1 s: each read is quick, the whole is too slow (4+ s > 1 s)
        try:
            s.sendall(bytes([byte]))
        except OSError:
            cut = time.monotonic() - t0
            break
        time.sleep(0.1)
    if cut is None:
        s.settimeout(3)
        assert s.recv(100) in (b"",)  # the server has closed the connection
        cut = time.monotonic() - t0
    assert cut < 3.0 and server.reaped >= 1
    s.close()
    assert get_models(server) == 200  # and the server still serves


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(server):
    s = connect(server)
    s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b"\r\n\r\n" not in first:  # the whole response: headers and body may come in separate segments
        first += s.recv(65536)
    head, body = first.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200") and json.loads(body)["object"] == "list"
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(100) == b""  # nothing more sent: closed by the server
    assert 0.5 < time.monotonic() - t0 < 3.0
    s.close()
