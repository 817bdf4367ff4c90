"""Human feedback from annotation tools -> annotation records (the format of ``rltf annotate``).

Reads Label Studio's JSON export, Argilla records (span + text questions), doccano JSONL
(``[start, end, label]``) and Prodigy JSONL (``spans``) (the readers: :mod:`rltf.spans.export_readers`;
the field checks: :mod:`rltf.spans.export_fields`). Each annotation by each person becomes one
record::

    {"id", "item_id", "prompt", "answer", "critique", "spans": [{"quote", "label", "start", "end",
     "match": "offset", "comment"?}], "unmatched": [], "correct": true|false|null, "annotator",
     "created", "lead_time", "source", "revision"?, "task"?, "problem_id"?, "reference"?}

``revision`` is the person's corrected answer (Label Studio's "Corrected answer" text area, a
``revision`` column of the other formats), present only when they wrote one.

Nothing is silently fixed: an offset that does not slice the answer (or whose text disagrees with
the answer there), an unknown label, a missing prompt or answer, HTML in a comment, an empty
annotation or a duplicate (same item, same annotator, same content) is a :class:`Problem` naming the
record, and that record is left out. Several annotators of one item are all kept.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from rltf.errors import DataError
from rltf.feedback.base import LABEL_SYNONYMS
from rltf.spans.export_fields import Annotation, FieldError, Problem, text_field
from rltf.spans.export_readers import READERS

__all__ = ["FORMATS", "MAX_EXPORT_BYTES", "Annotation", "Problem", "detect_format", "read_export", "validate",
           "write_records_atomic"]

FORMATS = ("label-studio", "argilla", "doccano", "prodigy")
MAX_EXPORT_BYTES = 1 << 30  # refuse exports over 1 GiB (``max_bytes`` to change)
_HTML = re.compile(r"<\s*/?\s*(script|style|iframe|object|embed|img|svg|a|b|i|u|p|div|span|br|hr|font|table|tr|td|"
                   r"ul|ol|li|h[1-6]|em|strong|code|pre|html|body|head|meta|link|form|input)\b[^>]*>", re.I)


def read_export(path: str | Path, fmt: str = "auto", *, prompt_key: str = "prompt", answer_key: str = "answer",
                max_bytes: int = MAX_EXPORT_BYTES) -> tuple[list[dict], list[Problem]]:
    """Records and problems from an annotation tool's export (``fmt``: one of :data:`FORMATS` or ``auto``).

    Raises :class:`DataError` for a file that cannot be read at all (missing, too big, not UTF-8,
    not JSON, nested deeper than a parser can follow); everything wrong with single annotations
    comes back as problems. Every annotation read ends as exactly one record or one problem (an
    item whose annotations cannot even be listed counts as one), so ``len(records) + len(problems)``
    is what the export held."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes, more than the limit of {max_bytes} (raise it with --max-bytes)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataError(f"{path}: not valid UTF-8 (byte {err.start + 1}, line {line}); export the file as UTF-8") from None
    fmt = detect_format(path, text) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)} or auto")
    items = _load_json(path, text) if fmt in ("label-studio", "argilla") else _load_jsonl(path, text)
    problems: list[Problem] = []
    units = list(READERS[fmt](path.name, items, prompt_key, answer_key))
    annotations = []
    for unit in units:
        (problems if isinstance(unit, Problem) else annotations).append(unit)
    records = validate(annotations, problems, source=fmt)
    return records, problems


def detect_format(path: Path, text: str) -> str:
    head = text.lstrip()[:1]
    if head not in ("[", "{"):
        what = "is empty" if not head else f"starts with {text.lstrip()[:20]!r}"
        raise DataError(f"{path}: {what}; expected a JSON export (a list) or JSONL objects")
    if head == "[" or (head == "{" and path.suffix == ".json"):
        sample = text[:20000]
        if '"responses"' in sample and '"fields"' in sample:
            return "argilla"
        return "label-studio"
    sample = text[:20000]
    if '"spans"' in sample and ('"_input_hash"' in sample or '"_task_hash"' in sample or '"meta"' in sample):
        return "prodigy"
    return "doccano"


def _parse(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError(f"{where}: JSON nested deeper than it can be read (no export nests so deep)") from None


def _load_json(path: Path, text: str) -> list:
    try:
        data = _parse(str(path), text)
    except json.JSONDecodeError as err:
        hint = " (the file looks truncated)" if err.pos >= len(text.rstrip()) - 1 else ""
        raise DataError(f"{path}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}{hint}") from None
    if isinstance(data, dict):
        data = data.get("records", data.get("tasks", [data]))
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    return data


def _load_jsonl(path: Path, text: str) -> list:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_parse(f"{path}:{number}", line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); a truncated last line?") from None
    return out


# -- validation ----------------------------------------------------------------------------------
def validate(annotations: Iterable[Annotation], problems: list[Problem], source: str) -> list[dict]:
    """Annotations -> records; anything wrong with one is a Problem and leaves that record out. Two
    records of one item by one annotator (different content) get ids made unique by their order."""
    records, seen, ids = [], set(), Counter()
    for a in annotations:
        try:
            record = _record(a, source)
        except FieldError as bad:
            problems.append(Problem(a.where, bad.reason, bad.detail))
            continue
        key = (a.item_id, a.annotator, record["critique"], json.dumps(record["spans"], sort_keys=True),
               record.get("revision"))
        if key in seen:
            problems.append(Problem(a.where, "duplicate", "the same annotator gave the same annotation twice"))
            continue
        seen.add(key)
        ids[record["id"]] += 1
        if ids[record["id"]] > 1:
            record["id"] = f"{record['id']}#{ids[record['id']]}"
        records.append(record)
    return records


def _record(a: Annotation, source: str) -> dict:
    prompt = a.prompt if isinstance(a.prompt, str) else None
    answer = a.answer if isinstance(a.answer, str) else None
    for field_name, value in (("prompt", prompt), ("answer", answer)):
        if value is None or not value.strip():
            raw = a.prompt if field_name == "prompt" else a.answer
            raise FieldError(f"missing_{field_name}", f"no {field_name} text ({raw!r:.40})")
        text_field(value, field_name)
    critique = text_field(a.critique, "critique")
    revision = text_field(a.revision, "the corrected answer (revision)", optional=True)
    annotator = text_field(a.annotator, "the annotator's name")
    spans = []
    for s in a.spans or []:
        spans.append(_span(s, answer))
    for what, text in [("critique", critique), ("corrected answer", revision or ""), ("annotator's name", annotator)] \
            + [("comment", s.get("comment", "")) for s in spans]:
        found = _HTML.search(text or "")
        if found:
            raise FieldError("html", f"markup in the {what} ({found.group(0)!r}); write plain text")
    if not critique.strip() and not spans and not (revision or "").strip():
        raise FieldError("empty", "no critique, no spans and no corrected answer")
    return {"id": f"{source}:{a.item_id}:{annotator}", "item_id": a.item_id, "prompt": prompt, "answer": answer,
            "critique": critique.strip(), "spans": spans, "unmatched": [], "correct": a.correct,
            "annotator": annotator, "created": a.created, "lead_time": a.lead_time, "source": source,
            **({"revision": revision.strip()} if revision and revision.strip() else {}), **(a.extra or {})}


def _span(s: Any, answer: str) -> dict:
    if not isinstance(s, dict):
        raise FieldError("bad_shape", f"span {s!r:.60} is not an object with start, end and label")
    start, end, label = s.get("start"), s.get("end"), s.get("label")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end <= len(answer):
        raise FieldError("bad_offset", f"span [{start!r:.20}, {end!r:.20}) does not slice the answer ({len(answer)} characters)")
    if not isinstance(label, str) or LABEL_SYNONYMS.get(label.strip().lower()) is None:
        raise FieldError("unknown_label", f"span {answer[start:end]!r:.40} has label {label!r:.40}; use good/bad (positive/negative)")
    quote = answer[start:end]
    if s.get("text") is not None and s.get("text") != quote:
        raise FieldError("bad_offset", f"span text {s.get('text')!r:.40} is not the answer's text there ({quote!r:.40})")
    if not quote.strip():
        raise FieldError("bad_offset", f"span [{start}, {end}) covers only white space")
    out = {"quote": quote, "label": LABEL_SYNONYMS[label.strip().lower()], "start": start, "end": end, "match": "offset"}
    comment = text_field(s.get("comment"), "a span's comment", optional=True)
    if comment:
        out["comment"] = comment
    return out


def write_records_atomic(records: list[dict], path: str | Path) -> None:
    """JSONL, all or nothing: written to a temporary file beside ``path`` and renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
