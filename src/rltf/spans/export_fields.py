"""What one annotation becomes before validation (:class:`Annotation`), what is wrong with one
(:class:`Problem`), and the field checks shared by the export readers and the validation of
:mod:`rltf.spans.human`: a field of the wrong shape raises :class:`FieldError`, which becomes the
annotation's Problem."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate: text no file can store as UTF-8


@dataclass
class Problem:
    """One thing wrong with one record of an export."""

    where: str  # e.g. "export.json: task 12, annotation 3 (alice)"
    reason: str  # a short kind: bad_offset, unknown_label, missing_answer, html, duplicate, empty, bad_shape
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


@dataclass
class Annotation:
    """What one person said about one answer, before validation (offsets are characters of ``answer``)."""

    where: str
    item_id: str
    prompt: Any
    answer: Any
    critique: Any = ""
    spans: list[dict] | None = None  # {"start", "end", "label", "text"?, "comment"?}
    correct: bool | None = None
    annotator: str = "unknown"
    created: str | None = None
    lead_time: float | None = None
    extra: dict | None = None  # task, problem_id, reference carried over from the exported item
    revision: Any = None  # the person's corrected answer, when they wrote one


class FieldError(Exception):
    """One annotation cannot be read: ``reason`` and ``detail`` become its Problem."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def text_field(value: Any, field: str, optional: bool = False) -> str | None:
    """``value`` as the text of ``field``: a string (None allowed when ``optional``) with no lone
    surrogate (an escape like \\ud800 that is no character, which no file can store as UTF-8)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FieldError("bad_shape", f"{field} must be text, got {type(value).__name__} {value!r:.40}")
    if SURROGATE.search(value):
        raise FieldError("bad_text", f"{field} holds a lone surrogate (an escape like \\ud800 that is no character)")
    return value


def text_area_field(value: Any, field: str) -> str:
    """A Label Studio text area's ``text``: a list of strings, joined by new lines."""
    if not isinstance(value, list):
        raise FieldError("bad_shape", f"{field} must be a list of strings, got {type(value).__name__} {value!r:.40}")
    return "\n".join(text_field(t, field) for t in value)


def list_field(value: Any, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError("bad_shape", f"{field} must be a list, got {type(value).__name__} {value!r:.40}")
    return value


def lead_time_field(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FieldError("bad_shape", f"lead_time must be a non-negative number of seconds, got {value!r:.40}")
    return float(value)


def item_extra(data: dict) -> dict:
    """The item's task, problem_id, reference and rltf_id: scalars carried into the record."""
    out = {}
    for key in ("task", "problem_id", "reference", "rltf_id"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) and value is not None:
                raise FieldError("bad_shape", f"{key} must be text or a number, got {type(value).__name__}")
            out[key] = text_field(value, key) if isinstance(value, str) else value
    return out
