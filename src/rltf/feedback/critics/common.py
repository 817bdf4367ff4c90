"""Helpers shared by the programmatic critics: where the final answer sits, span building, leak guard."""
from __future__ import annotations

from rltf.feedback.base import Critique, Span, leaks_answer
from rltf.tasks.boxed import last_boxed_span

MISSING_BOX = ("Your answer does not end with a final answer in \\boxed{}. Finish with \\boxed{...} "
               "containing only the final answer.")
GENERIC_WRONG = "Your final answer is incorrect. Recheck your reasoning step by step before answering again."


def final_answer_region(answer: str) -> tuple[int, int] | None:
    """Character range of the last \\boxed{} content (stripped), or None."""
    span = last_boxed_span(answer)
    if span is None:
        return None
    start, end = span
    while start < end and answer[start].isspace():
        start += 1
    while end > start and answer[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def graded_region(answer: str, score) -> tuple[int, int] | None:
    """The final answer's character range, or None when there is none or the grader found none."""
    return None if score.extracted is None else final_answer_region(answer)


def span_at(answer: str, start: int, end: int, label: str = "negative") -> Span | None:
    if end <= start:
        return None
    return Span(answer[start:end], label, start)


def boxed_span(answer: str, label: str = "negative") -> list[Span]:
    region = final_answer_region(answer)
    return [] if region is None else [span_at(answer, *region, label=label)]


def finish(text: str, spans: list[Span | None], truth: str, source: str = "critic") -> Critique:
    """Build the critique; if the text would state the ground truth, fall back to a generic one."""
    if leaks_answer(text, truth):
        text = GENERIC_WRONG
    return Critique(text, [s for s in spans if s is not None], source=source)
