"""Nothing a judge returns may raise, and no reply that states the answer is accepted.

Hypothesis drives the whole path: response body -> client parsing -> validation -> Critique ->
revision prompt -> tokenizer -> JSONL line, over 10,000 generated replies (random unicode with
surrogates and control characters, truncations, huge inputs, JSON of the wrong shape, replies that
give the answer away in words, with separators or as an expression). The span judge's JSON and
``word_score_list`` records get the same treatment.
"""
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rltf.feedback.base import Critique
from rltf.feedback.client import ChatClient, JudgeError, parse_chat_response
from rltf.feedback.judge import LLMJudge
from rltf.feedback.leaks import leaks_answer
from rltf.feedback.span_judge import SpanJudge
from rltf.feedback.span_parse import FeedbackParseError, parse_dual_feedback
from rltf.models.tiny import build_tiny_tokenizer
from rltf.rollout.episode import revision_prompt
from rltf.tasks import get_task
from rltf.tasks.jsonl import json_line

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int, hyphen: str = "-") -> str:
    """English words for 0 <= n < 10**6, written independently of the library's reader."""
    if n < 20:
        return UNITS[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else hyphen + UNITS[n % 10])
    if n < 1000:
        rest = n % 100
        return UNITS[n // 100] + " hundred" + ("" if rest == 0 else " and " + spell(rest, hyphen))
    rest = n % 1000
    return spell(n // 1000, hyphen) + " thousand" + ("" if rest == 0 else " " + spell(rest, hyphen))


def leak_forms(n: int, rnd: random.Random) -> list[str]:
    digits = str(n)
    a = rnd.randint(0, n)
    forms = [digits, spell(n), spell(n, " "), " ".join(UNITS[int(d)] for d in digits), f"{a} + {n - a}",
             f"({a}+{n - a})", f"{n * 2} / 2", f"{n + 7} - 7", f"{spell(a)} plus {spell(n - a)}"]
    if len(digits) > 1:
        forms += [" ".join(digits), ",".join(digits), "_".join(digits)]
    if n == 0:
        forms.remove(f"{n * 2} / 2")
    return forms


class StubClient(ChatClient):
    """Hands out prepared replies; the shape of what a real client returns (str or JudgeError)."""

    name = "stub"

    def __init__(self):
        self.replies = []

    def complete_many(self, conversations):
        out, self.replies = self.replies[:len(conversations)], self.replies[len(conversations):]
        return out


@pytest.fixture(scope="module")
def setting():
    task = get_task("add2")
    problem = task.problems("eval", 1, seed=0)[0]
    answer = f"\\boxed{{{int(problem.answer) + 1}}}"
    return task, problem, answer, task.score(problem, answer), build_tiny_tokenizer()


def through_the_path(setting, judge, client, body: bytes) -> Critique:
    """Response body -> parse -> judge -> revision prompt -> tokenizer -> JSONL line (must not raise)."""
    task, problem, answer, score, tok = setting
    try:
        client.replies = [parse_chat_response(body)]
    except JudgeError as err:
        client.replies = [err]
    critique = judge.critique(task, problem, answer, score)
    prompt = revision_prompt(task, problem, answer, critique.text)
    tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
    line = json_line({"critique": critique.to_dict(), "prompt": prompt})
    assert json.loads(line)["critique"]["text"] == critique.text
    return critique


TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=400)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                       max_leaves=12)


@st.composite
def bodies(draw):
    """Response bodies: well-formed with hostile content, leaks, wrong shapes, garbage bytes, truncations."""
    kind = draw(st.sampled_from(["content", "content", "leak", "shape", "bytes", "truncated_body", "huge"]))
    content = draw(TEXT)
    marker = draw(st.sampled_from(["Critique:", "**Critique:**", "## Critique:", "critique :", "", "Critique:\n"]))
    if kind == "leak":
        n = draw(st.integers(0, 198))
        form = draw(st.sampled_from(leak_forms(n, random.Random(n))))
        content = f"{draw(TEXT)}\n{marker} {draw(st.sampled_from(['', 'The answer is ', 'Try ']))}{form}."
        return n, json.dumps({"choices": [{"message": {"content": content}, "finish_reason": "stop"}]}).encode()
    if kind == "content":
        finish = draw(st.sampled_from(["stop", "length", None, 3]))
        text = f"{draw(TEXT)}\n{marker}{content}" if draw(st.booleans()) else content
        return None, json.dumps({"choices": [{"message": {"content": text}, "finish_reason": finish}]}).encode()
    if kind == "shape":
        return None, json.dumps(draw(JSONISH)).encode()
    if kind == "bytes":
        return None, draw(st.binary(max_size=300))
    if kind == "huge":
        return None, json.dumps({"choices": [{"message": {"content": marker + content * 5000 + "\x00" * 100}}]}).encode()
    good = json.dumps({"choices": [{"message": {"content": f"{marker} {content}"}}]}).encode()
    return None, good[:draw(st.integers(0, len(good)))]


@settings(max_examples=10_000, **SETTINGS)
@given(bodies())
def test_judge_replies_never_raise_and_never_leak(setting, body):
    task, problem, answer, score, tok = setting
    leaked, raw = body
    client = StubClient()
    judge = LLMJudge(client)
    if leaked is not None:  # the reference answer becomes the leaked number, the rest is unchanged
        problem = type(problem)(problem.id, problem.question, str(leaked), problem.metadata)
        score = task.score(problem, answer)
    critique = through_the_path((task, problem, answer, score, tok), judge, client, raw)
    if critique.fallback is None:
        assert not leaks_answer(critique.text, problem.answer, problem.question)
    if leaked is not None:
        assert critique.fallback is not None, (raw, critique)
        assert judge.stats.failed == 1


@settings(max_examples=10_000, **SETTINGS)
@given(st.one_of(JSONISH.map(json.dumps), TEXT,
                 st.fixed_dictionaries({"textual_feedback": TEXT, "good_spans": JSONISH, "poor_spans": JSONISH}).map(json.dumps),
                 st.fixed_dictionaries({"textual_feedback": TEXT, "word_score_list": JSONISH}).map(json.dumps),
                 st.fixed_dictionaries({"textual_feedback": TEXT, "word_score_list": st.lists(
                     st.tuples(TEXT, st.one_of(st.integers(-2, 2), st.floats(), TEXT)), max_size=6)}).map(json.dumps)))
def test_span_judge_replies_never_raise(setting, reply):
    task, problem, answer, score, tok = setting
    try:
        parse_dual_feedback(reply)
    except FeedbackParseError:
        pass
    client = StubClient()
    client.replies = [reply]
    critique = SpanJudge(client).critique(task, problem, answer, score)
    json.loads(json_line(critique.to_dict()))
    if critique.fallback is None:
        assert not leaks_answer(critique.text, problem.answer, problem.question)


def test_leak_forms_are_all_caught_and_near_misses_are_not():
    rnd = random.Random(0)
    for n in list(range(0, 200)) + [rnd.randint(200, 99_999) for _ in range(200)]:
        for form in leak_forms(n, rnd):
            assert leaks_answer(f"Critique: think again, it is {form}.", str(n)), (n, form)
    assert not leaks_answer("You added 45 + 38 digit by digit but dropped the carry.", "83", "What is 45 + 38?")
    assert not leaks_answer("the tens digit is off by one", "47")
    assert leaks_answer("THE CAPITAL IS... paris!", "Paris")
    assert leaks_answer("Alice is a knight; and Bob is a knave", "Alice is a knight, and Bob is a knave.")
