"""Human feedback from annotation tools -> annotation records (the format of ``rltf annotate``).

Readers for Label Studio's JSON export, Argilla records (span + text questions), doccano JSONL
(``[start, end, label]``) and Prodigy JSONL (``spans``). Each annotation by each person becomes one
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
import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rltf.errors import DataError
from rltf.feedback.base import LABEL_SYNONYMS

FORMATS = ("label-studio", "argilla", "doccano", "prodigy")
MAX_EXPORT_BYTES = 1 << 30  # refuse exports over 1 GiB (``max_bytes`` to change)
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate: text no file can store as UTF-8
_HTML = re.compile(r"<\s*/?\s*(script|style|iframe|object|embed|img|svg|a|b|i|u|p|div|span|br|hr|font|table|tr|td|"
                   r"ul|ol|li|h[1-6]|em|strong|code|pre|html|body|head|meta|link|form|input)\b[^>]*>", re.I)


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


# -- readers: tool format -> Annotation or Problem, one per annotation ---------------------------------
class _Bad(Exception):
    """One annotation cannot be read: ``reason`` and ``detail`` become its Problem."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    """``value`` as the text of ``field``: a string (None allowed when ``optional``) with no lone
    surrogate (an escape like \\ud800 that is no character, which no file can store as UTF-8)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Bad("bad_shape", f"{field} must be text, got {type(value).__name__} {value!r:.40}")
    if _SURROGATE.search(value):
        raise _Bad("bad_text", f"{field} holds a lone surrogate (an escape like \\ud800 that is no character)")
    return value


def _texts(value: Any, field: str) -> str:
    """A Label Studio text area's ``text``: a list of strings, joined by new lines."""
    if not isinstance(value, list):
        raise _Bad("bad_shape", f"{field} must be a list of strings, got {type(value).__name__} {value!r:.40}")
    return "\n".join(_text(t, field) for t in value)


def _list(value: Any, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad("bad_shape", f"{field} must be a list, got {type(value).__name__} {value!r:.40}")
    return value


def _lead_time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _Bad("bad_shape", f"lead_time must be a non-negative number of seconds, got {value!r:.40}")
    return float(value)


def _extra(data: dict) -> dict:
    """The item's task, problem_id, reference and rltf_id: scalars carried into the record."""
    out = {}
    for key in ("task", "problem_id", "reference", "rltf_id"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) and value is not None:
                raise _Bad("bad_shape", f"{key} must be text or a number, got {type(value).__name__}")
            out[key] = _text(value, key) if isinstance(value, str) else value
    return out


def _label_studio(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    for k, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            yield Problem(f"{name}: item {k}", "bad_shape", "a Label Studio task is an object with 'data'")
            continue
        tid = str(item.get("id", k)) if isinstance(item.get("id", k), (int, str)) else str(k)
        annotations = item.get("annotations")
        if not isinstance(annotations, list):
            if annotations is not None:
                yield Problem(f"{name}: task {tid}", "bad_shape",
                              f"'annotations' must be a list, got {type(annotations).__name__}")
            continue
        for a, ann in enumerate(annotations):
            aid = ann.get("id", a) if isinstance(ann, dict) else a
            where = f"{name}: task {tid}, annotation {aid if isinstance(aid, (int, str)) else a}"
            try:
                yield _label_studio_annotation(where, tid, item["data"], ann, prompt_key, answer_key)
            except _Bad as bad:
                yield Problem(where, bad.reason, bad.detail)


def _label_studio_annotation(where: str, tid: str, data: dict, ann: Any, prompt_key: str, answer_key: str
                             ) -> Annotation | Problem:
    if not isinstance(ann, dict):
        raise _Bad("bad_shape", "an annotation is an object with a 'result' list")
    who = _who(ann.get("completed_by"))
    where = f"{where} ({who})"
    if ann.get("was_cancelled"):
        return Problem(where, "cancelled", "the annotator skipped this task")
    spans, comments, critique, correct, revision = {}, {}, "", None, None
    for n, res in enumerate(_list(ann.get("result"), "'result'")):
        if not isinstance(res, dict) or not isinstance(res.get("value"), dict):
            raise _Bad("bad_shape", f"result {n} has no 'value' object")
        value, kind, source = res["value"], res.get("type"), res.get("from_name")
        rid = res.get("id", f"#{n}")
        if not isinstance(rid, (str, int)):
            raise _Bad("bad_shape", f"result {n}: 'id' must be text or a number")
        rid = str(rid)
        if kind == "labels":
            labels = _list(value.get("labels"), f"result {rid} 'labels'")
            if len(labels) != 1:
                raise _Bad("unknown_label", f"span {rid} has {len(labels)} labels {labels!r:.60}; give one")
            if rid in spans:
                raise _Bad("duplicate_region", f"two spans share the result id {rid!r}; each span needs its own id")
            spans[rid] = {"start": value.get("start"), "end": value.get("end"), "text": value.get("text"),
                          "label": _text(labels[0], f"span {rid} label")}
        elif kind == "textarea":
            text = _texts(value.get("text"), f"result {rid} 'text'")
            if source == "revision":
                revision = text
            elif "start" in value or rid in spans or source == "comment":
                comments[rid] = text
            elif source in (None, "critique") or not critique:
                if critique:
                    raise _Bad("bad_shape", "two whole-answer text areas; which one is the critique?")
                critique = text
        elif kind == "choices":
            choices = _list(value.get("choices"), f"result {rid} 'choices'")
            choice = _text(choices[0], f"result {rid} choice") if choices else None
            correct = {"correct": True, "incorrect": False}.get(str(choice).lower()) if choice is not None else None
        else:
            raise _Bad("bad_shape", f"result {rid} has the unknown type {kind!r:.40}")
    for rid, comment in comments.items():
        if rid not in spans:
            raise _Bad("bad_shape", f"a comment for region {rid!r}, which has no span")
        spans[rid]["comment"] = comment
    created = ann.get("created_at")
    return Annotation(where, tid, data.get(prompt_key), data.get(answer_key), critique, list(spans.values()), correct,
                      who, _text(created, "created_at", optional=True), _lead_time(ann.get("lead_time")),
                      _extra(data), revision)


def _who(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        for key in ("email", "username", "id"):
            value = completed_by.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return _text(str(value), "the annotator's name")
        return "unknown"
    if completed_by is None:
        return "unknown"
    if isinstance(completed_by, bool) or not isinstance(completed_by, (int, str)):
        raise _Bad("bad_shape", f"completed_by must be a user id or object, got {type(completed_by).__name__}")
    return _text(f"user-{completed_by}", "the annotator's name")


_ARGILLA_CRITIQUE = ("critique", "feedback", "comment", "comments", "textual_feedback")
_ARGILLA_REVISION = ("revision", "corrected_answer")
_ARGILLA_VERDICT = ("correct", "label")


def _argilla(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    """Argilla 2.x records (``dataset.records.to_list(flatten=False)``): ``fields`` with the prompt and
    answer, ``responses`` keyed by question, each a list of ``{user_id, value}``: the span question's
    value is ``[{start, end, label}]``, the critique is the text question named ``critique`` (or
    ``feedback``, ``comment``), the corrected answer ``revision`` (or ``corrected_answer``), the verdict
    ``correct`` (or ``label``); other questions are a problem, so nothing is read as the wrong thing."""
    for k, item in enumerate(items):
        rid = str(item.get("id", k)) if isinstance(item, dict) and isinstance(item.get("id", k), (int, str)) else str(k)
        where = f"{name}: record {rid}"
        fields, responses = (item.get("fields"), item.get("responses")) if isinstance(item, dict) else (None, None)
        if not isinstance(fields, dict) or not isinstance(responses, dict):
            yield Problem(where, "bad_shape", "an Argilla 2.x record has 'fields' and 'responses' objects (an older "
                                              "Argilla export? export it with Argilla 2.x)")
            continue
        by_user: dict[str, dict] = {}
        try:
            for question, answers in responses.items():
                for resp in _list(answers, f"responses[{question!r}]"):
                    if not isinstance(resp, dict) or "value" not in resp:
                        raise _Bad("bad_shape", f"responses[{question!r}] holds {resp!r:.40}, not {{user_id, value}}")
                    user = resp.get("user_id", "unknown")
                    if not isinstance(user, (str, int)) or isinstance(user, bool):
                        raise _Bad("bad_shape", f"responses[{question!r}]: user_id must be text")
                    by_user.setdefault(_text(str(user), "user_id"), {})[question] = resp["value"]
        except _Bad as bad:
            yield Problem(where, bad.reason, bad.detail)
            continue
        if not by_user:
            yield Problem(where, "empty", "no responses")
            continue
        for user, values in by_user.items():
            try:
                yield _argilla_annotation(f"{where} ({user})", rid, fields, values, user, item, prompt_key, answer_key)
            except _Bad as bad:
                yield Problem(f"{where} ({user})", bad.reason, bad.detail)


def _argilla_annotation(where, rid, fields, values, user, item, prompt_key, answer_key) -> Annotation:
    spans, critique, revision, correct = [], "", None, None
    for question, value in values.items():
        if question in _ARGILLA_VERDICT:
            verdict = _text(value, question, optional=True)
            correct = {"correct": True, "incorrect": False}.get(str(verdict).lower()) if verdict is not None else None
        elif question in _ARGILLA_REVISION:
            revision = _text(value, question, optional=True)
        elif question in _ARGILLA_CRITIQUE:
            critique = _text(value, question, optional=True) or ""
        elif isinstance(value, list):
            if spans:
                raise _Bad("bad_shape", f"two span questions; {question!r} is the second")
            spans = value
        else:
            raise _Bad("unknown_question", f"question {question!r} ({type(value).__name__}) is neither spans nor "
                                           f"one of {', '.join(_ARGILLA_CRITIQUE + _ARGILLA_REVISION + _ARGILLA_VERDICT)}")
    updated = item.get("updated_at") or item.get("inserted_at")
    return Annotation(where, rid, fields.get(prompt_key), fields.get(answer_key), critique,
                      [dict(s) if isinstance(s, dict) else s for s in spans], correct, user,
                      _text(updated, "updated_at", optional=True), None, None, revision)


def _doccano(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    """doccano sequence-labelling JSONL: ``text`` (the answer), ``label``: ``[[start, end, label], ...]``,
    and the prompt and critique as extra columns (``prompt``, ``critique`` or ``Comments``: a list of
    strings), ``revision`` for a corrected answer."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        try:
            if not isinstance(item, dict):
                raise _Bad("bad_shape", "a doccano line is a JSON object")
            spans = []
            for entry in _list(item.get("label") if "label" in item else item.get("labels"), "label"):
                if isinstance(entry, list) and len(entry) == 3:
                    spans.append({"start": entry[0], "end": entry[1], "label": entry[2]})
                else:
                    spans.append(entry)
            comments = [_text(c, "Comments") for c in _list(item.get("Comments", item.get("comments")), "Comments")]
            critique = _text(item["critique"], "critique") if item.get("critique") is not None else "\n".join(comments)
            who = item.get("user", item.get("annotator", "doccano"))
            yield Annotation(where, str(item.get("id", k)), item.get(prompt_key), item.get("text", item.get(answer_key)),
                             critique, spans, None, _text(str(who), "user") if isinstance(who, (str, int)) else
                             _text(who, "user"), None, None, None, _text(item.get("revision"), "revision", optional=True))
        except _Bad as bad:
            yield Problem(where, bad.reason, bad.detail)


def _prodigy(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    """Prodigy JSONL: ``text`` (the answer), ``spans`` ``[{start, end, label}]``, the prompt in ``meta``
    (or top level), the critique in ``critique`` or ``user_input``, a corrected answer in ``revision``;
    ``answer`` is Prodigy's decision (only ``accept`` becomes a record)."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        try:
            if not isinstance(item, dict):
                raise _Bad("bad_shape", "a Prodigy line is a JSON object")
            if item.get("answer", "accept") != "accept":
                yield Problem(where, "not_accepted", f"Prodigy decision {item.get('answer')!r:.40}")
                continue
            meta = item.get("meta", {})
            if not isinstance(meta, dict):
                raise _Bad("bad_shape", f"meta must be an object, got {type(meta).__name__}")
            critique = item.get("critique") if item.get("critique") is not None else item.get("user_input", "")
            who = item.get("_annotator_id") or item.get("_session_id") or "prodigy"
            yield Annotation(where, str(item.get("_input_hash", k)), item.get(prompt_key, meta.get(prompt_key)),
                             item.get("text"), _text(critique, "critique"), _list(item.get("spans"), "spans"), None,
                             _text(str(who), "annotator") if isinstance(who, (str, int)) else _text(who, "annotator"),
                             None, None, None, _text(item.get("revision"), "revision", optional=True))
        except _Bad as bad:
            yield Problem(where, bad.reason, bad.detail)


READERS: dict[str, Callable[..., Iterable[Annotation | Problem]]] = {
    "label-studio": _label_studio, "argilla": _argilla, "doccano": _doccano, "prodigy": _prodigy}


# -- validation ----------------------------------------------------------------------------------
def validate(annotations: Iterable[Annotation], problems: list[Problem], source: str) -> list[dict]:
    """Annotations -> records; anything wrong with one is a Problem and leaves that record out. Two
    records of one item by one annotator (different content) get ids made unique by their order."""
    records, seen, ids = [], set(), Counter()
    for a in annotations:
        try:
            record = _record(a, source)
        except _Bad as bad:
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
            raise _Bad(f"missing_{field_name}", f"no {field_name} text ({raw!r:.40})")
        _text(value, field_name)
    critique = _text(a.critique, "critique")
    revision = _text(a.revision, "the corrected answer (revision)", optional=True)
    annotator = _text(a.annotator, "the annotator's name")
    spans = []
    for s in a.spans or []:
        spans.append(_span(s, answer))
    for what, text in [("critique", critique), ("corrected answer", revision or ""), ("annotator's name", annotator)] \
            + [("comment", s.get("comment", "")) for s in spans]:
        found = _HTML.search(text or "")
        if found:
            raise _Bad("html", f"markup in the {what} ({found.group(0)!r}); write plain text")
    if not critique.strip() and not spans and not (revision or "").strip():
        raise _Bad("empty", "no critique, no spans and no corrected answer")
    return {"id": f"{source}:{a.item_id}:{annotator}", "item_id": a.item_id, "prompt": prompt, "answer": answer,
            "critique": critique.strip(), "spans": spans, "unmatched": [], "correct": a.correct,
            "annotator": annotator, "created": a.created, "lead_time": a.lead_time, "source": source,
            **({"revision": revision.strip()} if revision and revision.strip() else {}), **(a.extra or {})}


def _span(s: Any, answer: str) -> dict:
    if not isinstance(s, dict):
        raise _Bad("bad_shape", f"span {s!r:.60} is not an object with start, end and label")
    start, end, label = s.get("start"), s.get("end"), s.get("label")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end <= len(answer):
        raise _Bad("bad_offset", f"span [{start!r:.20}, {end!r:.20}) does not slice the answer ({len(answer)} characters)")
    if not isinstance(label, str) or LABEL_SYNONYMS.get(label.strip().lower()) is None:
        raise _Bad("unknown_label", f"span {answer[start:end]!r:.40} has label {label!r:.40}; use good/bad (positive/negative)")
    quote = answer[start:end]
    if s.get("text") is not None and s.get("text") != quote:
        raise _Bad("bad_offset", f"span text {s.get('text')!r:.40} is not the answer's text there ({quote!r:.40})")
    if not quote.strip():
        raise _Bad("bad_offset", f"span [{start}, {end}) covers only white space")
    out = {"quote": quote, "label": LABEL_SYNONYMS[label.strip().lower()], "start": start, "end": end, "match": "offset"}
    comment = _text(s.get("comment"), "a span's comment", optional=True)
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
