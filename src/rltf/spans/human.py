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
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rltf.errors import DataError
from rltf.feedback.base import LABEL_SYNONYMS

FORMATS = ("label-studio", "argilla", "doccano", "prodigy")
MAX_EXPORT_BYTES = 1 << 30  # refuse exports over 1 GiB (``max_bytes`` to change)
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

    Raises :class:`DataError` for a file that cannot be read at all (missing, too big, not JSON);
    everything wrong with single records comes back as problems."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes, more than the limit of {max_bytes} (raise it with --max-bytes)")
    text = path.read_bytes().decode("utf-8", errors="strict") if size else ""
    fmt = detect_format(path, text) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)} or auto")
    items = _load_json(path, text) if fmt in ("label-studio", "argilla") else _load_jsonl(path, text)
    reader = READERS[fmt]
    problems: list[Problem] = []
    annotations = list(reader(path.name, items, problems, prompt_key, answer_key))
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


def _load_json(path: Path, text: str) -> list:
    try:
        data = json.loads(text)
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
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); a truncated last line?") from None
    return out


# -- readers: tool format -> Annotation ------------------------------------------------------------
def _label_studio(name: str, items: list, problems: list[Problem], prompt_key: str, answer_key: str
                  ) -> Iterator[Annotation]:
    for k, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            problems.append(Problem(f"{name}: item {k}", "bad_shape", "a Label Studio task is an object with 'data'"))
            continue
        data = item["data"]
        tid = str(item.get("id", k))
        for a, ann in enumerate(item.get("annotations") or []):
            who = _who(ann.get("completed_by")) if isinstance(ann, dict) else "unknown"
            where = f"{name}: task {tid}, annotation {ann.get('id', a) if isinstance(ann, dict) else a} ({who})"
            if not isinstance(ann, dict) or not isinstance(ann.get("result", []), list):
                problems.append(Problem(where, "bad_shape", "an annotation is an object with a 'result' list"))
                continue
            if ann.get("was_cancelled"):
                problems.append(Problem(where, "cancelled", "the annotator skipped this task"))
                continue
            spans, comments, critique, correct, revision = {}, {}, "", None, None
            for res in ann.get("result", []):
                value = res.get("value") if isinstance(res, dict) else None
                if not isinstance(value, dict):
                    problems.append(Problem(where, "bad_shape", f"result {res!r:.80} has no 'value' object"))
                    break
                kind, rid = res.get("type"), str(res.get("id", len(spans)))
                if kind == "labels":
                    labels = value.get("labels") or []
                    spans[rid] = {"start": value.get("start"), "end": value.get("end"), "text": value.get("text"),
                                  "label": labels[0] if len(labels) == 1 else labels}
                elif kind == "textarea":
                    text = "\n".join(t for t in value.get("text", []) if isinstance(t, str))
                    if res.get("from_name") == "revision":
                        revision = text
                    elif "start" in value or rid in spans or res.get("from_name") == "comment":
                        comments[rid] = text
                    else:
                        critique = text
                elif kind == "choices":
                    choice = (value.get("choices") or [None])[0]
                    correct = {"correct": True, "incorrect": False}.get(str(choice).lower())
            else:
                for rid, comment in comments.items():
                    if rid in spans:
                        spans[rid]["comment"] = comment
                yield Annotation(where, tid, data.get(prompt_key), data.get(answer_key), critique,
                                 list(spans.values()), correct, who, ann.get("created_at"), ann.get("lead_time"),
                                 {k: data[k] for k in ("task", "problem_id", "reference", "rltf_id") if k in data},
                                 revision)


def _who(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id") or "unknown")
    return "unknown" if completed_by is None else f"user-{completed_by}"


def _argilla(name: str, items: list, problems: list[Problem], prompt_key: str, answer_key: str) -> Iterator[Annotation]:
    """Argilla 2.x records (``dataset.records.to_list(flatten=False)``): ``fields`` with the prompt and
    answer, ``responses`` keyed by question: a span question's value is ``[{start, end, label}]``, a
    text question's a string, a label question's ``correct``/``incorrect``; grouped by ``user_id``."""
    for k, item in enumerate(items):
        fields, responses = (item.get("fields"), item.get("responses")) if isinstance(item, dict) else (None, None)
        rid = str(item.get("id", k)) if isinstance(item, dict) else str(k)
        if not isinstance(fields, dict) or not isinstance(responses, dict):
            problems.append(Problem(f"{name}: record {rid}", "bad_shape", "an Argilla record has 'fields' and 'responses'"))
            continue
        by_user: dict[str, dict] = {}
        for question, answers in responses.items():
            for resp in answers if isinstance(answers, list) else []:
                if isinstance(resp, dict):
                    by_user.setdefault(str(resp.get("user_id", "unknown")), {})[question] = resp.get("value")
        for user, values in by_user.items():
            spans = next((v for v in values.values() if isinstance(v, list)), [])
            critique = next((v for q, v in values.items() if isinstance(v, str)
                             and q not in ("correct", "label", "revision", "corrected_answer")), "")
            verdict = values.get("correct", values.get("label"))
            correct = {"correct": True, "incorrect": False}.get(str(verdict).lower()) if verdict is not None else None
            yield Annotation(f"{name}: record {rid} ({user})", rid, fields.get(prompt_key), fields.get(answer_key),
                             critique, [dict(s) if isinstance(s, dict) else s for s in spans], correct, user,
                             item.get("updated_at") or item.get("inserted_at"), None, None,
                             values.get("revision", values.get("corrected_answer")))


def _doccano(name: str, items: list, problems: list[Problem], prompt_key: str, answer_key: str) -> Iterator[Annotation]:
    """doccano sequence-labelling JSONL: ``text`` (the answer), ``label``: ``[[start, end, label], ...]``,
    and the prompt and critique as extra columns (``prompt``, ``critique`` or ``Comments``)."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        if not isinstance(item, dict):
            problems.append(Problem(where, "bad_shape", "a doccano line is a JSON object"))
            continue
        spans = []
        for entry in item.get("label") or item.get("labels") or []:
            if isinstance(entry, (list, tuple)) and len(entry) == 3:
                spans.append({"start": entry[0], "end": entry[1], "label": entry[2]})
            else:
                spans.append(entry)
        comments = item.get("Comments") or item.get("comments") or []
        critique = item.get("critique") or "\n".join(c for c in comments if isinstance(c, str))
        yield Annotation(where, str(item.get("id", k)), item.get(prompt_key), item.get("text", item.get(answer_key)),
                         critique, spans, None, str(item.get("user", item.get("annotator", "doccano"))), None, None,
                         None, item.get("revision"))


def _prodigy(name: str, items: list, problems: list[Problem], prompt_key: str, answer_key: str) -> Iterator[Annotation]:
    """Prodigy JSONL: ``text`` (the answer), ``spans`` ``[{start, end, label}]``, the prompt in ``meta``
    (or top level), the critique in ``critique`` or ``user_input``; ``answer`` is Prodigy's decision
    (only ``accept`` becomes a record)."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        if not isinstance(item, dict):
            problems.append(Problem(where, "bad_shape", "a Prodigy line is a JSON object"))
            continue
        if item.get("answer", "accept") != "accept":
            problems.append(Problem(where, "not_accepted", f"Prodigy decision {item.get('answer')!r}"))
            continue
        meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
        yield Annotation(where, str(item.get("_input_hash", k)), item.get(prompt_key, meta.get(prompt_key)),
                         item.get("text"), item.get("critique") or item.get("user_input") or "",
                         item.get("spans") or [], None, str(item.get("_annotator_id") or item.get("_session_id") or
                                                           "prodigy"), None, None, None, item.get("revision"))


READERS: dict[str, Callable[..., Iterable[Annotation]]] = {
    "label-studio": _label_studio, "argilla": _argilla, "doccano": _doccano, "prodigy": _prodigy}


# -- validation ----------------------------------------------------------------------------------
def validate(annotations: Iterable[Annotation], problems: list[Problem], source: str) -> list[dict]:
    """Annotations -> records; anything wrong with one is a Problem and leaves that record out."""
    records, seen = [], set()
    for a in annotations:
        before = len(problems)
        record = _record(a, problems, source)
        if len(problems) > before or record is None:
            continue
        key = (a.item_id, a.annotator, record["critique"], json.dumps(record["spans"], sort_keys=True),
               record.get("revision"))
        if key in seen:
            problems.append(Problem(a.where, "duplicate", "the same annotator gave the same annotation twice"))
            continue
        seen.add(key)
        records.append(record)
    return records


def _record(a: Annotation, problems: list[Problem], source: str) -> dict | None:
    def bad(reason: str, detail: str) -> None:
        problems.append(Problem(a.where, reason, detail))

    for field_name, value in (("prompt", a.prompt), ("answer", a.answer)):
        if not isinstance(value, str) or not value.strip():
            bad(f"missing_{field_name}", f"no {field_name} text ({value!r:.40})")
            return None
    if not isinstance(a.critique, str):
        bad("bad_shape", f"critique must be text, got {type(a.critique).__name__}")
        return None
    if a.revision is not None and not isinstance(a.revision, str):
        bad("bad_shape", f"the corrected answer (revision) must be text, got {type(a.revision).__name__}")
        return None
    answer, spans = a.answer, []
    for s in a.spans or []:
        span = _span(s, answer, bad)
        if span is None:
            return None
        spans.append(span)
    for text in [a.critique, a.revision or ""] + [s.get("comment", "") for s in spans]:
        if _HTML.search(text or ""):
            bad("html", f"markup in a comment ({_HTML.search(text).group(0)!r}); write plain text")
            return None
    if not a.critique.strip() and not spans and not (a.revision or "").strip():
        bad("empty", "no critique, no spans and no corrected answer")
        return None
    return {"id": f"{source}:{a.item_id}:{a.annotator}", "item_id": a.item_id, "prompt": a.prompt, "answer": answer,
            "critique": a.critique.strip(), "spans": spans, "unmatched": [], "correct": a.correct,
            "annotator": a.annotator, "created": a.created, "lead_time": a.lead_time, "source": source,
            **({"revision": a.revision.strip()} if a.revision and a.revision.strip() else {}), **(a.extra or {})}


def _span(s: Any, answer: str, bad: Callable[[str, str], None]) -> dict | None:
    if not isinstance(s, dict):
        bad("bad_shape", f"span {s!r:.60} is not an object with start, end and label")
        return None
    start, end, label = s.get("start"), s.get("end"), s.get("label")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end <= len(answer):
        bad("bad_offset", f"span [{start!r}, {end!r}) does not slice the answer ({len(answer)} characters)")
        return None
    if isinstance(label, list) or LABEL_SYNONYMS.get(str(label).strip().lower()) is None:
        bad("unknown_label", f"span {answer[start:end]!r:.40} has label {label!r}; use good/bad (positive/negative)")
        return None
    quote = answer[start:end]
    if isinstance(s.get("text"), str) and s["text"] != quote:
        bad("bad_offset", f"span text {s['text']!r:.40} is not the answer's text there ({quote!r:.40})")
        return None
    if not quote.strip():
        bad("bad_offset", f"span [{start}, {end}) covers only white space")
        return None
    out = {"quote": quote, "label": LABEL_SYNONYMS[str(label).strip().lower()], "start": start, "end": end,
           "match": "offset"}
    if s.get("comment"):
        out["comment"] = str(s["comment"])
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
