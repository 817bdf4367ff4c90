"""Judges against real HTTP servers on 127.0.0.1: a fault-injecting one and `rltf serve`'s."""
import threading

import pytest

from faulty_server import FaultyServer
from rltf.feedback import JudgeConfig, build_feedback
from rltf.feedback.client import OpenAIChatClient
from rltf.feedback.judge import LLMJudge
from rltf.feedback.validate import extract_critique, extract_score
from rltf.tasks import get_task


@pytest.fixture(scope="module")
def wrong_items():
    task = get_task("add2")
    problems = task.problems("eval", 6, seed=0)
    items = []
    for p in problems:
        answer = f"\\boxed{{{int(p.answer) + 1}}}"
        items.append((task, p, answer, task.score(p, answer)))
    return items


def test_reply_validation_reasons():
    assert extract_critique(None) == (None, "empty")
    assert extract_critique("no marker here") == (None, "no_marker")
    assert extract_critique("Critique: " + "x" * 5000) == (None, "too_long")
    assert extract_critique("Critique: it is 47.", "47") == (None, "leaks_answer")
    assert extract_critique("Analysis: a\nCritique: Check the carry.\nScore: 3") == ("Check the carry.", None)
    assert extract_score("Critique: meh\nScore: 7") == 7.0 and extract_score("Score: 11") is None


def judge_for(url, model="scripted", **kw):
    client = OpenAIChatClient(url, model, timeout=kw.pop("timeout", 1.0), max_retries=kw.pop("retries", 0),
                              backoff=0.01, concurrency=kw.pop("concurrency", 1))
    return LLMJudge(client, **kw)


def test_every_fault_is_counted_and_falls_back_to_correctness(wrong_items):
    script = ["500", "sleep", "garbage", "nomarker", "empty", "leak"]
    leak = wrong_items[5][1].answer
    with FaultyServer(script, leak_text=leak, sleep=2.0) as server:
        judge = judge_for(server.url)
        critiques = judge.critique_many(wrong_items)
    assert [c.fallback for c in critiques] == ["http_500", "timeout", "bad_response", "no_marker", "empty",
                                               "leaks_answer"]
    assert all(c.text == "Your previous attempt was incorrect." for c in critiques)
    assert judge.stats.failed == 6 and judge.stats.requested == 6


def test_retries_with_backoff_recover_from_transient_errors(wrong_items):
    with FaultyServer(["429", "500", "good"]) as server:
        judge = judge_for(server.url, retries=3)
        critique = judge.critique(*wrong_items[0])
        assert server.requests == 3
    assert critique.fallback is None and critique.text == "Check the carry in the tens column."


def test_concurrent_requests_and_sqlite_cache(wrong_items, tmp_path):
    with FaultyServer(["good"]) as server:
        judge = judge_for(server.url, concurrency=4, cache=str(tmp_path / "cache.sqlite"))
        first = judge.critique_many(wrong_items)
        again = judge_for(server.url, cache=str(tmp_path / "cache.sqlite")).critique_many(wrong_items)
        assert server.requests == len(wrong_items)  # the second pass came from the cache
    assert [c.text for c in first] == [c.text for c in again]


def test_eval_completes_against_faulty_server_and_reports_fallbacks(tiny_backend):
    from rltf.eval import evaluate
    from rltf.rollout import SamplingParams

    task = get_task("add2")
    with FaultyServer(["500", "good", "garbage", "good"]) as server:
        fb = build_feedback("judge", judge=JudgeConfig(server.url, "scripted", timeout=1.0, retries=0,
                                                       concurrency=2))
        result = evaluate(task, tiny_backend, n=8, rounds=2, feedback=fb,
                          params=SamplingParams(max_new_tokens=8, temperature=1.0))
    assert result["feedback"]["requested"] == 8  # the random model is wrong on every prompt
    assert result["feedback"]["failed"] == 4
    assert result["feedback"]["reasons"] == {"http_500": 2, "bad_response": 2}
    assert len(result["per_round_accuracy"]) == 2


def test_judge_against_rltf_serve(tiny_backend, wrong_items):
    """`rltf serve`'s server answers chat completions; a random model's reply has no 'Critique:'."""
    import json
    import urllib.request

    from rltf.serve.server import make_server

    server = make_server(tiny_backend, "tiny-random", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        models = json.loads(urllib.request.urlopen(f"{url}/models", timeout=10).read())
        assert models["data"][0]["id"] == "tiny-random"
        critique = judge_for(url, "tiny-random", timeout=60).critique(*wrong_items[0])
        assert critique.fallback in ("no_marker", "empty", "truncated")  # a random model rambles
        assert judge_for(url, "another-model", timeout=60).critique(*wrong_items[0]).fallback == "http_404"
        req = urllib.request.Request(f"{url}/chat/completions", data=b'{"messages": "oops"}', method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400
    finally:
        server.shutdown()
        server.server_close()


def test_span_judge_checks_the_decoded_reply_not_its_json_escapes():
    """A lone surrogate or a terminal escape written as a JSON escape (\\udcff, \\u001b) passes a check
    of the raw reply; the span judge checks the decoded critique and spans, so the reply is rejected
    (counted, with the correctness fallback) and nothing reaches `rltf annotate`'s critique. A reply
    nested deeper than json can read is not JSON, not a crash."""
    import json as _json

    from rltf.feedback.span_judge import SpanJudge

    task = get_task("fact_summary")
    problem = task.problems("eval", 1)[0]
    answer = "Tom is a 31-year-old chef."

    class Scripted:
        name = "scripted"

        def __init__(self, reply):
            self.reply = reply

        def complete_many(self, convs):
            return [self.reply for _ in convs]

    raw = '{"textual_feedback": "The city is missing.\\udcff", "poor_spans": ["Tom"]}'
    assert "\\udcff" in raw and "\udcff" not in raw  # the raw reply is clean ASCII
    escape = _json.dumps({"textual_feedback": "Fine\u001b[2J.", "good_spans": []})
    span_escape = '{"textual_feedback": "The city is missing.", "poor_spans": ["Tom\\ud800"]}'
    deep = '{"textual_feedback": "x", "poor_spans": ' + "[" * 50_000 + "]" * 50_000 + "}"
    for reply, reason in ((raw, "bad_characters"), (escape, "bad_characters"), (span_escape, "bad_characters"),
                          (deep, None)):
        judge = SpanJudge(Scripted(reply))
        (c,) = judge.critique_many([(task, problem, answer, task.score(problem, answer))])
        assert c.fallback is not None and "\udcff" not in c.text and "\u001b" not in c.text
        if reason:
            assert c.fallback == reason
