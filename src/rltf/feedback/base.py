"""The feedback interface: every provider turns (task, problem, answer, score) into a Critique.

A Critique is the text a judge wrote plus the spans of the answer it talks about: (quote, label)
pairs with label ``positive`` or ``negative`` and, when the provider knows it, the character
offset of the quote in the answer. Text2Grad turns these spans into token rewards.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from rltf.errors import SpanError
from rltf.feedback.leaks import leaks_answer  # noqa: F401 - part of this module's interface

LABELS = ("positive", "negative")
LABEL_SYNONYMS = {"positive": "positive", "good": "positive", "+1": "positive", "1": "positive",
                  "negative": "negative", "poor": "negative", "bad": "negative", "-1": "negative"}
CORRECT_TEXT = "Your previous attempt was correct."
INCORRECT_TEXT = "Your previous attempt was incorrect."


@dataclass(frozen=True)
class Span:
    quote: str
    label: str  # "positive" or "negative"
    start: int | None = None  # character offset of the quote in the answer, when known

    def __post_init__(self):
        if self.label not in LABELS:
            raise ValueError(f"span label must be one of {LABELS}, got {self.label!r}")
        if not isinstance(self.quote, str) or not self.quote:
            raise ValueError("span quote must be a non-empty string")

    @classmethod
    def coerce(cls, span: Any) -> Span:
        """The one way in for spans from outside (files, users): a Span, a record dict
        ``{quote|text|span, label, start?}`` or a ``(quote, label[, start])`` pair. Labels good/poor/bad
        and 1/-1 read as positive/negative. Raises :class:`~rltf.errors.SpanError` naming the problem."""
        if isinstance(span, Span):
            return span
        if isinstance(span, dict):
            quote = next((span[k] for k in ("quote", "text", "span") if k in span), None)
            label, start = span.get("label"), span.get("start")
        elif isinstance(span, (list, tuple)) and len(span) in (2, 3):
            quote, label, start = span[0], span[1], span[2] if len(span) == 3 else None
        else:
            raise SpanError(f"cannot read span {span!r}: expected a Span, a dict with quote and label, or (quote, label)")
        if not isinstance(quote, str) or not quote.strip():
            raise SpanError(f"span {span!r} has no text to look for")
        norm_label = LABEL_SYNONYMS.get(str(label).strip().lower())
        if norm_label is None:
            raise SpanError(f"span {quote!r} has label {label!r}; use positive/negative (or good/poor, 1/-1)")
        if start is not None and (not isinstance(start, int) or isinstance(start, bool) or start < 0):
            raise SpanError(f"span {quote!r} has start {start!r}; a character offset is a non-negative integer")
        return cls(quote, norm_label, start)

    def to_dict(self) -> dict[str, Any]:
        return {"quote": self.quote, "label": self.label, "start": self.start}


@dataclass
class Critique:
    text: str
    spans: list[Span] = field(default_factory=list)
    source: str = ""  # which provider wrote it: critic, judge:<model>, local:<model>, correctness, self
    fallback: str | None = None  # why the provider's own critique was rejected (then text is correctness-only)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "spans": [s.to_dict() for s in self.spans], "source": self.source,
                "fallback": self.fallback}


@dataclass
class FeedbackStats:
    """Counters a provider keeps; thread-safe because judges run requests concurrently."""

    requested: int = 0
    failed: int = 0  # critiques rejected or not obtained, replaced by correctness-only feedback
    reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, reason: str | None) -> None:
        with self._lock:
            self.requested += 1
            if reason:
                self.failed += 1
                self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "failed": self.failed, "reasons": dict(self.reasons)}


class FeedbackProvider(ABC):
    """Writes critiques. Subclasses implement :meth:`critique`; :meth:`critique_many` may batch."""

    name = "feedback"

    def __init__(self):
        self.stats = FeedbackStats()

    @abstractmethod
    def critique(self, task, problem, answer: str, score) -> Critique:
        """A critique of ``answer`` to ``problem`` (``score`` is the task's grade of it)."""

    def critique_many(self, items: Sequence[tuple[Any, Any, str, Any]]) -> list[Critique]:
        return [self.critique(*item) for item in items]


def correctness_text(correct: bool) -> str:
    return CORRECT_TEXT if correct else INCORRECT_TEXT
