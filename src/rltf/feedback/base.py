"""The feedback interface: every provider turns (task, problem, answer, score) into a Critique.

A Critique is the text a judge wrote plus the spans of the answer it talks about: (quote, label)
pairs with label ``positive`` or ``negative`` and, when the provider knows it, the character
offset of the quote in the answer. Text2Grad turns these spans into token rewards.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from rltf.feedback.leaks import leaks_answer  # noqa: F401 - part of this module's interface

LABELS = ("positive", "negative")
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


@dataclass
class Critique:
    text: str
    spans: list[Span] = field(default_factory=list)
    source: str = ""  # which provider wrote it: critic, judge:<model>, local:<model>, correctness, self
    fallback: str | None = None  # why the provider's own critique was rejected (then text is correctness-only)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "spans": [asdict(s) for s in self.spans], "source": self.source,
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
