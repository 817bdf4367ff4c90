"""Reading annotation records: (prompt, answer) -> critique + labelled spans, from JSONL.

The format ``rltf annotate`` and ``rltf label-studio import`` write (and the reference's good/poor
span lists or ``word_score_list``). Each record's ``spans`` become :class:`~rltf.feedback.Span`
objects; a record that cannot be read is a DataError naming the file and line.
"""
from __future__ import annotations

import json
from pathlib import Path

from rltf.errors import DataError, SpanError
from rltf.feedback.base import Span
from rltf.feedback.span_parse import parse_dual_feedback
from rltf.tasks.jsonl import read_records, require


def read_annotations(path: str | Path) -> list[dict]:
    """Annotation records from JSONL (ours, or any with prompt, answer, critique and spans)."""
    out = []
    for where, r in read_records(str(path)):
        prompt = require(r, ("prompt", "question"), where)
        answer = require(r, ("answer", "response", "completion"), where)
        critique = require(r, ("critique", "textual_feedback", "feedback"), where)
        for name, value in (("prompt", prompt), ("answer", answer), ("critique", critique),
                            ("revision", r.get("revision")), ("annotator", r.get("annotator"))):
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: {name} must be text, got {type(value).__name__}")
        spans = r.get("spans")
        if spans is not None and not isinstance(spans, list):
            raise DataError(f"{where}: spans must be a list, got {type(spans).__name__}")
        if spans is None:  # the reference's good/poor lists or word_score_list
            try:
                spans = parse_dual_feedback(json.dumps({**r, "textual_feedback": critique})).spans
            except Exception as err:
                raise DataError(f"{where}: cannot read the spans: {err}") from None
        try:
            spans = [Span.coerce(span) for span in spans]
        except SpanError as err:
            raise DataError(f"{where}: {err}") from None
        out.append({**r, "prompt": prompt, "answer": answer, "critique": critique, "spans": spans})
    return out
