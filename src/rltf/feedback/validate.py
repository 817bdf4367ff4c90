"""Accept or reject a judge's reply. Garbage never reaches training as a critique.

The rules, in the order they are applied (the first that fails names the rejection reason):

1. ``empty``: no reply, or nothing after the marker; ``too_long`` for a reply over 20 times the
   critique limit, refused before any regular expression runs on it.
2. ``bad_characters``: control characters other than tab and newlines (NUL, terminal escape
   sequences), lone surrogates, U+FFFD (the mark of undecodable bytes), or bidirectional overrides.
3. ``no_marker``: no "Critique:" marker. Markup around the marker (``**Critique:**``,
   ``## Critique:``, ``_Critique_:``) is accepted and removed. When a reply has several markers
   the text after the **last** one is the critique (the judge's prompt asks it to end with the
   critique, so earlier markers belong to its analysis). A following "Score:" line is cut off.
4. ``too_long``: more than ``max_chars`` characters.
5. ``leaks_answer``: the critique states the reference answer in any form that
   :func:`rltf.feedback.leaks.leaks_answer` reads (words, separators, expressions, normalisation).
6. ``contradicts_verdict``: the critique calls a wrong answer correct ("your answer is correct",
   "well done"), or a correct answer wrong ("your answer is incorrect"), in a sentence with no
   "but"/"however"/"except" that would qualify it.

A reply cut off by the token limit never gets here: the client turns ``finish_reason: "length"``
into the failure ``truncated``.
"""
from __future__ import annotations

import re
import unicodedata

from rltf.feedback.leaks import leaks_answer

MAX_CRITIQUE_CHARS = 2000
REJECTION_REASONS = ("empty", "bad_characters", "no_marker", "too_long", "leaks_answer", "contradicts_verdict")
_MARKUP = r"[*_#>`\s]*"
_MARKER = re.compile(rf"(?<![A-Za-z]){_MARKUP}critique{_MARKUP}:[*_`]*", re.I)
_SUBJECT = (r"(?:your|the|this|my)\s+(?:final\s+|previous\s+|overall\s+)?"
            r"(?:answer|attempt|solution|response|result|work)")
_UNQUALIFIED = r"(?![^.!?\n]*\b(?:but|however|except|although|though|yet|only)\b)"
_CALLS_CORRECT = re.compile(
    rf"(?:\b{_SUBJECT}\s+(?:is|was|looks|seems|appears)\s+(?:to\s+be\s+)?(?:entirely\s+|completely\s+|fully\s+|"
    rf"perfectly\s+|totally\s+|absolutely\s+)?(?:correct|right|accurate)\b|\b(?:well done|good job|great job|"
    rf"you got it right)\b|^\s*(?:correct|right)\s*[.!]){_UNQUALIFIED}", re.I)
_CALLS_WRONG = re.compile(
    rf"\b{_SUBJECT}\s+(?:(?:is|was)\s+(?:not\s+(?:correct|right)|incorrect|wrong|false)|(?:isn't|wasn't|is\s+not)"
    rf"\s+(?:correct|right))\b", re.I)
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_bad_characters(text: str) -> bool:
    """Control characters (but tab, CR, LF), lone surrogates, U+FFFD or bidirectional overrides."""
    for ch in text:
        if ch in "\t\n\r":
            continue
        if ch == "\ufffd" or ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            return True
    return False


def contradicts_verdict(critique: str, correct: bool) -> bool:
    """True when the critique says the opposite of the grader's verdict on the whole answer."""
    return (_CALLS_WRONG if correct else _CALLS_CORRECT).search(critique) is not None


def extract_critique(reply: str | None, reference: str | None = None, max_chars: int = MAX_CRITIQUE_CHARS, *,
                     question: str = "", correct: bool | None = None) -> tuple[str | None, str | None]:
    """(critique, None) when the reply is usable, else (None, reason); the rules are in the module doc."""
    if not isinstance(reply, str) or not reply.strip():
        return None, "empty"
    if len(reply) > 20 * max_chars:  # before any regex: a huge reply costs nothing to refuse
        return None, "too_long"
    if has_bad_characters(reply):
        return None, "bad_characters"
    marks = list(_MARKER.finditer(reply))
    if not marks:
        return None, "no_marker"
    text = reply[marks[-1].end():]
    text = re.split(r"\n\s*[*_#]*\s*score[*_]*\s*:", text, flags=re.I)[0]
    text = text.strip().strip("*_`").strip()
    if not text:
        return None, "empty"
    if len(text) > max_chars:
        return None, "too_long"
    if reference and leaks_answer(text, reference, question):
        return None, "leaks_answer"
    if correct is not None and contradicts_verdict(text, correct):
        return None, "contradicts_verdict"
    return text, None


def extract_score(reply: str | None) -> float | None:
    """The 0-10 rating after "Score:", or None."""
    if not isinstance(reply, str) or not reply:
        return None
    m = re.search(r"score[*_]*\s*:[*_]*\s*(\d+(?:\.\d+)?)", reply, re.I)
    if not m:
        return None
    value = float(m.group(1))
    return value if 0 <= value <= 10 else None
