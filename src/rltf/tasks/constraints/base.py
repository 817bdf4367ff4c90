"""What an IFEval instruction type is (:class:`Instruction`: arguments, wording, checker, where a
response breaks it, smallest repair) and where a response breaks one (:class:`Violation`), with the
argument values the types draw from (lm-eval's)."""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass

RELATIONS = ("less than", "at least")  # lm-eval's _COMPARISON_RELATION
ENDINGS = ("Any other questions?", "Is there anything else I can help with?")  # lm-eval's _ENDING_OPTIONS
KEYWORDS = ("garden", "river", "morning", "window", "coffee", "music", "bridge", "winter", "paper", "light",
            "forest", "kitchen", "friend", "market", "ocean", "letter", "candle", "train", "bread", "smile")


@dataclass(frozen=True)
class Violation:
    """Where a response breaks an instruction: ``ranges`` of offending text (may be empty, e.g. a
    missing keyword has no place), and the facts a critique states (``counts``, ``quotes``)."""

    kind: str
    ranges: tuple[tuple[int, int], ...]
    detail: dict


class Instruction(ABC):
    """One IFEval instruction type: its id, how its arguments are drawn, its wording (lm-eval's),
    its checker, where a response breaks it, and the smallest repair."""

    id = ""

    def sample(self, rng: random.Random) -> dict:
        return {}

    @abstractmethod
    def describe(self, args: dict) -> str:
        """The instruction's wording for ``args`` (lm-eval's)."""

    @abstractmethod
    def check(self, text: str, args: dict) -> bool:
        """Whether ``text`` follows the instruction (lm-eval's ``check_following``, strict)."""

    def violations(self, text: str, args: dict) -> Violation:
        """Call only when ``check`` is False."""
        return Violation(self.id, (), {})

    def satisfied(self, text: str, args: dict) -> tuple[tuple[int, int], ...]:
        """Ranges of text that satisfy an inclusion instruction (positive spans); () for others."""
        return ()

    @abstractmethod
    def repair(self, text: str, args: dict) -> str:
        """``text`` changed as little as possible so that it follows the instruction."""
