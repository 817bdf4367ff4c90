"""Critic for the fact-summary task: every wrong fact is a negative span, every correct key fact a
positive span, and the critique names the missing facts (by kind, never by value)."""
from __future__ import annotations

from rltf.feedback.base import Critique, Span
from rltf.tasks.fact_summary import KINDS

_WHY = {"distractor": "the post says it about someone else", "invented": "the post never says it"}


def critique_fact_summary(task, problem, answer: str, score) -> Critique:
    mentions = task.mentions(problem, answer)
    spans = [Span(m.text, "positive" if m.correct else "negative", m.start) for m in mentions]
    wrong = [m for m in mentions if not m.correct]
    stated = {m.kind for m in mentions if m.correct}
    missing = [k for k in KINDS if k not in stated]
    parts = [f"\"{m.text}\" is not the author's {m.kind}: {_WHY[m.source]}." for m in wrong]
    if missing:
        parts.append(f"The summary does not state the author's {_join(missing)}.")
    if not parts:
        return Critique("The summary states every key fact and nothing wrong.", spans, source="critic")
    good = list(dict.fromkeys(m.text for m in mentions if m.correct))  # each correct fact named once
    if good:
        quoted = _join(['"' + g + '"' for g in good])
        parts.append(f"{quoted} {'is' if len(good) == 1 else 'are'} right.")
    return Critique(" ".join(parts), spans, source="critic")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
