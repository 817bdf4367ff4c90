"""Find the final ``\\boxed{...}`` of a completion (braces balanced, the last one wins)."""
from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_boxed_span(text: str) -> tuple[int, int] | None:
    """Character range of the content of the last complete ``\\boxed{}``, or None."""
    found = None
    for match in _BOXED.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found = (match.end(), i - 1)
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{}``, stripped, or None when there is none."""
    span = last_boxed_span(text)
    return None if span is None else text[span[0]:span[1]].strip()
