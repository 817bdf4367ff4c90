"""Accept or reject a judge's reply. Garbage never reaches training as a critique."""
from __future__ import annotations

import re

from rltf.feedback.base import leaks_answer

MAX_CRITIQUE_CHARS = 2000
_MARKER = re.compile(r"critique\s*:", re.I)


def extract_critique(reply: str | None, reference: str | None = None,
                     max_chars: int = MAX_CRITIQUE_CHARS) -> tuple[str | None, str | None]:
    """(critique, None) when the reply is usable, else (None, reason).

    Reasons: ``empty``, ``no_marker`` (no "Critique:"), ``too_long``, ``leaks_answer``.
    """
    if reply is None or not reply.strip():
        return None, "empty"
    marks = list(_MARKER.finditer(reply))
    if not marks:
        return None, "no_marker"
    text = reply[marks[-1].end():]
    text = re.split(r"\n\s*score\s*:", text, flags=re.I)[0].strip()
    if not text:
        return None, "empty"
    if len(text) > max_chars:
        return None, "too_long"
    if reference and leaks_answer(text, reference):
        return None, "leaks_answer"
    return text, None


def extract_score(reply: str | None) -> float | None:
    """The 0-10 rating after "Score:", or None."""
    if not reply:
        return None
    m = re.search(r"score\s*:\s*(\d+(?:\.\d+)?)", reply, re.I)
    if not m:
        return None
    value = float(m.group(1))
    return value if 0 <= value <= 10 else None
