"""Readers of the annotation tools' exports (Label Studio, Argilla, doccano, Prodigy): each yields,
per annotation, an :class:`~rltf.spans.export_fields.Annotation` or the
:class:`~rltf.spans.export_fields.Problem` that leaves it out. :func:`rltf.spans.human.read_export`
picks the reader (:data:`READERS`) and validates what they read."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from rltf.spans.export_fields import (Annotation, FieldError, Problem, item_extra, lead_time_field, list_field,
                                      text_area_field, text_field)


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
            except FieldError as bad:
                yield Problem(where, bad.reason, bad.detail)


def _label_studio_annotation(where: str, tid: str, data: dict, ann: Any, prompt_key: str, answer_key: str
                             ) -> Annotation | Problem:
    if not isinstance(ann, dict):
        raise FieldError("bad_shape", "an annotation is an object with a 'result' list")
    who = _who(ann.get("completed_by"))
    where = f"{where} ({who})"
    if ann.get("was_cancelled"):
        return Problem(where, "cancelled", "the annotator skipped this task")
    spans, comments, critique, correct, revision = {}, {}, "", None, None
    for n, res in enumerate(list_field(ann.get("result"), "'result'")):
        if not isinstance(res, dict) or not isinstance(res.get("value"), dict):
            raise FieldError("bad_shape", f"result {n} has no 'value' object")
        value, kind, source = res["value"], res.get("type"), res.get("from_name")
        rid = res.get("id", f"#{n}")
        if not isinstance(rid, (str, int)):
            raise FieldError("bad_shape", f"result {n}: 'id' must be text or a number")
        rid = str(rid)
        if kind == "labels":
            labels = list_field(value.get("labels"), f"result {rid} 'labels'")
            if len(labels) != 1:
                raise FieldError("unknown_label", f"span {rid} has {len(labels)} labels {labels!r:.60}; give one")
            if rid in spans:
                raise FieldError("duplicate_region", f"two spans share the result id {rid!r}; each span needs its own id")
            spans[rid] = {"start": value.get("start"), "end": value.get("end"), "text": value.get("text"),
                          "label": text_field(labels[0], f"span {rid} label")}
        elif kind == "textarea":
            text = text_area_field(value.get("text"), f"result {rid} 'text'")
            if source == "revision":
                revision = text
            elif "start" in value or rid in spans or source == "comment":
                comments[rid] = text
            elif source in (None, "critique") or not critique:
                if critique:
                    raise FieldError("bad_shape", "two whole-answer text areas; which one is the critique?")
                critique = text
        elif kind == "choices":
            choices = list_field(value.get("choices"), f"result {rid} 'choices'")
            choice = text_field(choices[0], f"result {rid} choice") if choices else None
            correct = {"correct": True, "incorrect": False}.get(str(choice).lower()) if choice is not None else None
        else:
            raise FieldError("bad_shape", f"result {rid} has the unknown type {kind!r:.40}")
    for rid, comment in comments.items():
        if rid not in spans:
            raise FieldError("bad_shape", f"a comment for region {rid!r}, which has no span")
        spans[rid]["comment"] = comment
    created = ann.get("created_at")
    return Annotation(where, tid, data.get(prompt_key), data.get(answer_key), critique, list(spans.values()), correct,
                      who, text_field(created, "created_at", optional=True), lead_time_field(ann.get("lead_time")),
                      item_extra(data), revision)


def _who(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        for key in ("email", "username", "id"):
            value = completed_by.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return text_field(str(value), "the annotator's name")
        return "unknown"
    if completed_by is None:
        return "unknown"
    if isinstance(completed_by, bool) or not isinstance(completed_by, (int, str)):
        raise FieldError("bad_shape", f"completed_by must be a user id or object, got {type(completed_by).__name__}")
    return text_field(f"user-{completed_by}", "the annotator's name")


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
                for resp in list_field(answers, f"responses[{question!r}]"):
                    if not isinstance(resp, dict) or "value" not in resp:
                        raise FieldError("bad_shape", f"responses[{question!r}] holds {resp!r:.40}, not {{user_id, value}}")
                    user = resp.get("user_id", "unknown")
                    if not isinstance(user, (str, int)) or isinstance(user, bool):
                        raise FieldError("bad_shape", f"responses[{question!r}]: user_id must be text")
                    by_user.setdefault(text_field(str(user), "user_id"), {})[question] = resp["value"]
        except FieldError as bad:
            yield Problem(where, bad.reason, bad.detail)
            continue
        if not by_user:
            yield Problem(where, "empty", "no responses")
            continue
        for user, values in by_user.items():
            try:
                yield _argilla_annotation(f"{where} ({user})", rid, fields, values, user, item, prompt_key, answer_key)
            except FieldError as bad:
                yield Problem(f"{where} ({user})", bad.reason, bad.detail)


def _argilla_annotation(where, rid, fields, values, user, item, prompt_key, answer_key) -> Annotation:
    spans, critique, revision, correct = [], "", None, None
    for question, value in values.items():
        if question in _ARGILLA_VERDICT:
            verdict = text_field(value, question, optional=True)
            correct = {"correct": True, "incorrect": False}.get(str(verdict).lower()) if verdict is not None else None
        elif question in _ARGILLA_REVISION:
            revision = text_field(value, question, optional=True)
        elif question in _ARGILLA_CRITIQUE:
            critique = text_field(value, question, optional=True) or ""
        elif isinstance(value, list):
            if spans:
                raise FieldError("bad_shape", f"two span questions; {question!r} is the second")
            spans = value
        else:
            raise FieldError("unknown_question", f"question {question!r} ({type(value).__name__}) is neither spans nor "
                                           f"one of {', '.join(_ARGILLA_CRITIQUE + _ARGILLA_REVISION + _ARGILLA_VERDICT)}")
    updated = item.get("updated_at") or item.get("inserted_at")
    return Annotation(where, rid, fields.get(prompt_key), fields.get(answer_key), critique,
                      [dict(s) if isinstance(s, dict) else s for s in spans], correct, user,
                      text_field(updated, "updated_at", optional=True), None, None, revision)


def _doccano(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    """doccano sequence-labelling JSONL: ``text`` (the answer), ``label``: ``[[start, end, label], ...]``,
    and the prompt and critique as extra columns (``prompt``, ``critique`` or ``Comments``: a list of
    strings), ``revision`` for a corrected answer."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        try:
            if not isinstance(item, dict):
                raise FieldError("bad_shape", "a doccano line is a JSON object")
            spans = []
            for entry in list_field(item.get("label") if "label" in item else item.get("labels"), "label"):
                if isinstance(entry, list) and len(entry) == 3:
                    spans.append({"start": entry[0], "end": entry[1], "label": entry[2]})
                else:
                    spans.append(entry)
            comments = [text_field(c, "Comments") for c in list_field(item.get("Comments", item.get("comments")), "Comments")]
            critique = text_field(item["critique"], "critique") if item.get("critique") is not None else "\n".join(comments)
            who = item.get("user", item.get("annotator", "doccano"))
            yield Annotation(where, str(item.get("id", k)), item.get(prompt_key), item.get("text", item.get(answer_key)),
                             critique, spans, None, text_field(str(who), "user") if isinstance(who, (str, int)) else
                             text_field(who, "user"), None, None, None, text_field(item.get("revision"), "revision", optional=True))
        except FieldError as bad:
            yield Problem(where, bad.reason, bad.detail)


def _prodigy(name: str, items: list, prompt_key: str, answer_key: str) -> Iterator[Annotation | Problem]:
    """Prodigy JSONL: ``text`` (the answer), ``spans`` ``[{start, end, label}]``, the prompt in ``meta``
    (or top level), the critique in ``critique`` or ``user_input``, a corrected answer in ``revision``;
    ``answer`` is Prodigy's decision (only ``accept`` becomes a record)."""
    for k, item in enumerate(items):
        where = f"{name}:{k + 1}"
        try:
            if not isinstance(item, dict):
                raise FieldError("bad_shape", "a Prodigy line is a JSON object")
            if item.get("answer", "accept") != "accept":
                yield Problem(where, "not_accepted", f"Prodigy decision {item.get('answer')!r:.40}")
                continue
            meta = item.get("meta", {})
            if not isinstance(meta, dict):
                raise FieldError("bad_shape", f"meta must be an object, got {type(meta).__name__}")
            critique = item.get("critique") if item.get("critique") is not None else item.get("user_input", "")
            who = item.get("_annotator_id") or item.get("_session_id") or "prodigy"
            yield Annotation(where, str(item.get("_input_hash", k)), item.get(prompt_key, meta.get(prompt_key)),
                             item.get("text"), text_field(critique, "critique"), list_field(item.get("spans"), "spans"), None,
                             text_field(str(who), "annotator") if isinstance(who, (str, int)) else text_field(who, "annotator"),
                             None, None, None, text_field(item.get("revision"), "revision", optional=True))
        except FieldError as bad:
            yield Problem(where, bad.reason, bad.detail)


READERS: dict[str, Callable[..., Iterable[Annotation | Problem]]] = {
    "label-studio": _label_studio, "argilla": _argilla, "doccano": _doccano, "prodigy": _prodigy}
