"""`rltf serve` driven by the official `openai` client on 127.0.0.1 (tiny random model)."""
import http.client
import json
import threading

import openai
import pytest

from rltf.models import load_model_and_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.serve.server import make_server

KEY = "sk-test-0123456789"
MODEL = "tiny-random"


@pytest.fixture(scope="module")
def server():
    backend = HFBackend(*load_model_and_tokenizer(MODEL), batch_size=32)
    srv = make_server(backend, MODEL, port=0, api_key=KEY)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key=KEY, max_retries=0,
                         timeout=60)


def raw(server, method, path, body=None, headers=None):
    """One HTTP request; (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Authorization": f"Bearer {KEY}", **(headers or {})})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def test_models_list(client):
    assert [m.id for m in client.models.list()] == [MODEL]


def test_chat_with_n_and_logprobs(client, server):
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hi"}], n=2,
                                         max_tokens=6, temperature=1.0, logprobs=True, top_logprobs=2)
    assert len(out.choices) == 2 and [c.index for c in out.choices] == [0, 1]
    for choice in out.choices:
        tokens = choice.logprobs.content
        assert choice.finish_reason in ("stop", "length") and len(tokens) >= 1
        for t in tokens:
            assert t.logprob <= 0 and len(t.top_logprobs) == 2
            assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
            assert t.logprob <= t.top_logprobs[0].logprob + 1e-5  # nothing beats the most likely token
    assert out.usage.completion_tokens == sum(len(c.logprobs.content) for c in out.choices)
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_seeded_requests_are_reproducible(client):
    kw = dict(model=MODEL, messages=[{"role": "user", "content": "Count"}], max_tokens=8, temperature=1.0, seed=7)
    a, b = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert a.choices[0].message.content == b.choices[0].message.content


def test_streaming_matches_the_plain_answer(client):
    kw = dict(model=MODEL, messages=[{"role": "user", "content": "Tell a story"}], max_tokens=10, temperature=0.0)
    plain = client.chat.completions.create(**kw).choices[0]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [plain.finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1


def test_completions_for_raw_prompts(client):
    out = client.completions.create(model=MODEL, prompt=["Once upon a time", "1, 2, 3,"], n=2, max_tokens=5,
                                    temperature=0.0, logprobs=1)
    assert len(out.choices) == 4 and out.object == "text_completion"
    for c in out.choices:
        assert len(c.logprobs.tokens) == len(c.logprobs.token_logprobs) == len(c.logprobs.top_logprobs) >= 1
    streamed = list(client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5, temperature=0.0,
                                              stream=True))
    assert "".join(c.choices[0].text for c in streamed) == out.choices[0].text


def test_wrong_or_missing_key_is_401(server):
    bad = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    status, body = raw(server, "GET", "/v1/models", headers={"Authorization": ""})
    assert status == 401 and body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("kwargs,param", [
    (dict(messages=[]), "messages"),
    (dict(messages=[{"role": "user", "content": "x"}], tools=[{"type": "function", "function": {"name": "f"}}]),
     "tools"),
    (dict(messages=[{"role": "user", "content": "x"}], frequency_penalty=0.5), "frequency_penalty"),
    (dict(messages=[{"role": "user", "content": "x"}], top_logprobs=3), "top_logprobs"),
    (dict(messages=[{"role": "user", "content": "x"}], temperature=-1), "temperature"),
    (dict(messages=[{"role": "user", "content": "x"}], n=0), "n"),
    (dict(messages=[{"role": "wizard", "content": "x"}]), "messages"),
])
def test_invalid_requests_are_400_naming_the_parameter(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, max_tokens=4, **kwargs)
    assert info.value.status_code == 400 and info.value.body["param"] == param


def test_unsupported_parameter_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError, match="unsupported parameter: 'mystery'"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                       extra_body={"mystery": 1})


def test_unknown_model_and_route_are_404(client, server):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert raw(server, "GET", "/v1/nothing")[0] == 404
    assert raw(server, "POST", "/v1/embeddings", {"model": MODEL, "input": "x"})[0] == 404


def test_bad_bodies_get_answers_and_the_server_keeps_serving(client, server):
    assert raw(server, "POST", "/v1/chat/completions", b"{not json")[0] == 400
    assert raw(server, "POST", "/v1/chat/completions", b"[1, 2]")[0] == 400
    assert raw(server, "POST", "/v1/chat/completions", b'{"model": "tiny-random", "messages": [{"role": "user"}]}')[0] \
        == 400
    status, body = raw(server, "POST", "/v1/chat/completions", b"x" * 10,
                       headers={"Content-Length": str(5 * 1024 * 1024)})
    assert status == 413 and "limit" in body["error"]["message"]
    assert raw(server, "PUT", "/v1/models")[0] == 405
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "still there?"}],
                                          max_tokens=3).choices[0].finish_reason in ("stop", "length")


def test_a_full_queue_answers_503():
    from rltf.models.backend import SamplingParams
    from rltf.serve.engine import BatchingEngine, Job, QueueFull

    class Stuck:
        def __init__(self):
            self.release = threading.Event()

        def generate_ids(self, prompts, params, seed=0):
            self.release.wait(10)
            raise RuntimeError("released")

    backend = Stuck()
    engine = BatchingEngine(backend, max_queue=2, max_batch=1)
    params = SamplingParams(max_new_tokens=1)
    first = engine.submit(Job([[1]], 1, params, None))
    while engine._jobs:  # the worker holds the first job
        pass
    engine.submit(Job([[1]], 1, params, None))
    engine.submit(Job([[1]], 1, params, None))
    with pytest.raises(QueueFull):
        engine.submit(Job([[1]], 1, params, None))
    backend.release.set()
    with pytest.raises(RuntimeError, match="released"):
        first.result(timeout=10)
    engine.close()


@pytest.mark.parametrize("max_queue", [256, 8])
def test_load_50_clients_x_20_requests_none_lost(max_queue):
    """Every request is answered or refused with 503; none is lost. With a small queue some are refused."""
    from rltf.serve.load import load_test

    backend = HFBackend(*load_model_and_tokenizer(MODEL), batch_size=32)
    srv = make_server(backend, MODEL, port=0, max_queue=max_queue, max_batch=32)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 1.0}
        result = load_test(f"http://127.0.0.1:{srv.server_address[1]}/v1", body, clients=50, requests=20,
                           timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    statuses = result["statuses"]
    assert result["lost"] == 0 and sum(statuses.values()) == 1000
    assert set(statuses) <= {"200", "503"}
    if max_queue >= 50:
        assert statuses == {"200": 1000}
        assert srv.state.engine.batches < 1000  # requests were batched together
    else:
        assert statuses.get("503", 0) > 0 and statuses.get("200", 0) > 0


def test_serve_command_checks_its_key_and_knows_loopback(monkeypatch):
    import subprocess
    import sys

    from rltf.cli.serve_cmd import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    env = {k: v for k, v in __import__("os").environ.items() if k != "RLTF_NO_SUCH_KEY"}
    r = subprocess.run([sys.executable, "-m", "rltf.cli", "serve", "--model", "tiny-random", "--api-key-env",
                        "RLTF_NO_SUCH_KEY"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip() == ("rltf: error: --api-key-env RLTF_NO_SUCH_KEY: that environment "
                                                      "variable is empty or not set")
