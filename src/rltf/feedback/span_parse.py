"""Reading dual feedback (a critique plus labelled spans) written as JSON by a judge or a span reward model.

Accepted shapes (METHODS §2.1 and §2.3)::

    {"textual_feedback": "...", "good_spans": [...], "poor_spans": [...]}            # summaries
    {"feedback": "...", "wrong_code": [...], "improvement_code": [...]}              # code
    {"textual_feedback": "...", "word_score_list": [["word", 1], ["word", -1], ...]}  # reference RM

Parsing is strict first (the whole reply, or a fenced block, is JSON), then lenient (the first
balanced ``{...}``, trailing commas and single quotes repaired, then key-by-key extraction). A reply
that neither reading understands raises :class:`FeedbackParseError` with a reason, which callers
count; it never becomes a critique. ``improvement_code`` lines are working code that could be
better: they are kept as neutral spans (no reward), as they are neither wrong nor praised.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from rltf.errors import RltfError
from rltf.feedback.base import Span
from rltf.feedback.validate import has_bad_characters

_SURROGATE = re.compile("[\ud800-\udfff]")

FEEDBACK_KEYS = ("textual_feedback", "feedback", "critique")
POSITIVE_KEYS = ("good_spans",)
NEGATIVE_KEYS = ("poor_spans", "wrong_code")
NEUTRAL_KEYS = ("improvement_code",)
MAX_REPLY_CHARS = 50_000  # longer replies are refused before parsing (the lenient reader is not linear)


class FeedbackParseError(RltfError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class DualFeedback:
    critique: str
    spans: list[Span]
    neutral: list[str] = field(default_factory=list)
    lenient: bool = False  # True when only the lenient reading understood the reply


def _strict(text: str) -> Any:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    for candidate in (text.strip(), fenced.group(1).strip() if fenced else None):
        if candidate:
            try:
                return json.loads(candidate)
            except (ValueError, RecursionError):  # RecursionError: a reply nested deeper than json reads
                pass
    return None


def _balanced_object(text: str) -> str | None:
    start = text.find("{")
    while start >= 0:
        depth, in_str, esc = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == in_str:
                    in_str = None
            elif ch in "\"'":
                in_str = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        start = text.find("{", start + 1)
    return None


_STRING = r"([\"'])((?:(?!\1)[^\\]|\\.)*)\1"


def _unquote(quote: str, body: str) -> str:
    try:
        return json.loads('"' + body.replace('"', '\\"') + '"') if quote == "'" else json.loads(f'"{body}"')
    except ValueError:
        return body


def _lenient(text: str) -> Any:
    block = _balanced_object(text)
    if block is not None:
        repaired = re.sub(r",\s*([}\]])", r"\1", block)
        for attempt in (repaired, repaired.replace("true", "True").replace("false", "False").replace("null", "None")):
            try:
                return json.loads(attempt)
            except ValueError:
                try:
                    value = ast.literal_eval(attempt)
                    if isinstance(value, dict):
                        return value
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    pass
    # Key-by-key: "key": "string" and "key": [list of strings], in double or single quotes
    found: dict[str, Any] = {}
    for key in FEEDBACK_KEYS:
        m = re.search(rf"[\"']{key}[\"']\s*:\s*{_STRING}", text, re.S)
        if m:
            found[key] = _unquote(m.group(1), m.group(2))
            break
    for key in POSITIVE_KEYS + NEGATIVE_KEYS + NEUTRAL_KEYS:
        m = re.search(rf"[\"']{key}[\"']\s*:\s*\[(.*?)(?:\]|$)", text, re.S)
        if m:
            found[key] = [_unquote(q, body) for q, body in re.findall(_STRING, m.group(1))]
    return found or None


def _strings(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise FeedbackParseError("bad_spans", f"{key} must be a list of strings")
    out = []
    for item in value:
        if isinstance(item, dict):  # {"text": ...} or {"span": ...}
            item = item.get("text") or item.get("span") or item.get("quote")
        if not isinstance(item, str):
            raise FeedbackParseError("bad_spans", f"{key} holds a non-string item {item!r}")
        if item.strip():
            out.append(item)
    return out


def parse_dual_feedback(text: str) -> DualFeedback:
    """A judge's or reward model's reply -> critique and spans (raises FeedbackParseError)."""
    if not isinstance(text, str) or not text.strip():
        raise FeedbackParseError("empty")
    if len(text) > MAX_REPLY_CHARS:
        raise FeedbackParseError("too_long", f"{len(text)} characters (at most {MAX_REPLY_CHARS})")
    data, lenient = _strict(text), False
    if not isinstance(data, dict):
        data, lenient = _lenient(text), True
    if not isinstance(data, dict):
        raise FeedbackParseError("not_json", text[:80])
    critique = next((data[k] for k in FEEDBACK_KEYS if isinstance(data.get(k), str)), None)
    if critique is None or not critique.strip():
        raise FeedbackParseError("no_feedback", f"none of {', '.join(FEEDBACK_KEYS)} holds a critique")
    spans = [Span(q, "positive") for k in POSITIVE_KEYS for q in _strings(data.get(k), k)]
    spans += [Span(q, "negative") for k in NEGATIVE_KEYS for q in _strings(data.get(k), k)]
    if "word_score_list" in data:
        if not isinstance(data["word_score_list"], list):
            raise FeedbackParseError("bad_spans", "word_score_list must be a list of [word, score] pairs")
        spans += words_to_spans(data["word_score_list"])
    neutral = [q for k in NEUTRAL_KEYS for q in _strings(data.get(k), k)]
    # checked on the decoded values: a JSON escape (\\udcff, \\u001b) passes a check of the raw reply.
    # The critique is read by a policy and written to files; a span only quotes the answer (which may
    # itself hold U+FFFD or a control character), and alignment rejects a quote the answer lacks, but
    # no answer holds a lone surrogate, which no file can store.
    if has_bad_characters(critique):
        raise FeedbackParseError("bad_characters", "a control character, lone surrogate or bidirectional override "
                                                   "in the decoded critique")
    if any(_SURROGATE.search(q) for q in [*(s.quote for s in spans), *neutral]):
        raise FeedbackParseError("bad_characters", "a lone surrogate in a decoded span")
    return DualFeedback(critique.strip(), spans, neutral, lenient)


def format_dual_feedback(critique: str, spans: Sequence[Span]) -> str:
    """The JSON the span reward model learns to write (METHODS §2.3, good/poor span form)."""
    return json.dumps({"textual_feedback": critique,
                       "good_spans": [s.quote for s in spans if s.label == "positive"],
                       "poor_spans": [s.quote for s in spans if s.label == "negative"]}, ensure_ascii=False)


def words_to_spans(word_scores: Sequence[Sequence[Any]]) -> list[Span]:
    """The reference's ``word_score_list`` ([[word, 1|0|-1], ...]) -> spans:
    each run of consecutive words with the same non-zero score becomes one span."""
    spans, run, run_label = [], [], None
    for item in list(word_scores) + [("", 0)]:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise FeedbackParseError("bad_spans", f"word_score_list item {item!r} is not a [word, score] pair")
        word, raw = item
        if not isinstance(word, str):
            raise FeedbackParseError("bad_spans", f"word_score_list word {word!r} is not a string")
        score = raw.strip() if isinstance(raw, str) else raw
        score = {"-1": -1, "0": 0, "1": 1, "+1": 1}.get(score, score) if isinstance(score, str) else score
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score not in (-1, 0, 1):
            raise FeedbackParseError("bad_spans", f"word_score_list score {raw!r} of {word!r} is not -1, 0 or 1")
        score = int(score)
        label = {1: "positive", -1: "negative"}.get(score)
        if label != run_label and run:
            spans.append((" ".join(run), run_label))
            run = []
        run_label = label
        if label is not None:
            run.append(word)
    return [Span(q, label) for q, label in spans if q.strip() and not re.fullmatch(r"\W+", q)]
