"""Hostile human-feedback files: damaged, hand-edited or another tool's exports, fed to `rltf
label-studio import` as a user would. Every file ends as one `rltf: error:` line and exit 2 with no
output file, or as records plus one `problem:` line per annotation left out (named by task and
annotation, counted by kind) with every annotation accounted for (written + left out = read).
Nothing is silently fixed, split or dropped, and no traceback ever reaches the user."""
import json
import re

import pytest

from rltf.cli import main
from rltf.errors import DataError
from rltf.feedback.records import read_annotations
from rltf.spans.human import read_export

ANSWER = "Tom is a 31-year-old chef from Boston."
PROMPT = "Summarise the post's key facts."
CITY = ANSWER.index("Boston")


def span(start=CITY, end=CITY + 6, label="bad", rid="r1", **value):
    return {"id": rid, "from_name": "label", "to_name": "answer", "type": "labels",
            "value": {"start": start, "end": end, "text": ANSWER[start:end] if isinstance(start, int) and
                      isinstance(end, int) else None, "labels": [label], **value}}


def critique(text="The city is wrong."):
    return {"id": "c", "from_name": "critique", "to_name": "answer", "type": "textarea", "value": {"text": [text]}}


def annotation(result=None, who=1, aid=1, **extra):
    return {"id": aid, "completed_by": who, "result": result if result is not None else [span(), critique()],
            "lead_time": 3.0, **extra}


def task(annotations, tid=7, **data):
    return {"id": tid, "data": {"prompt": PROMPT, "answer": ANSWER, **data}, "annotations": annotations}


def run(tmp_path, capsys, content, name="export.json", fmt=None):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    out = tmp_path / "records.jsonl"
    out.unlink(missing_ok=True)
    code = main(["label-studio", "import", str(path), "--out", str(out), *(["--format", fmt] if fmt else [])])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured, out


def one_error(code, captured, out, match):
    errors = [x for x in captured.err.splitlines() if x.startswith("rltf: error:")]
    assert code == 2 and len(errors) == 1 and re.search(match, errors[0]), captured.err
    assert not out.exists()


def accounted(code, captured, out, problems, kinds):
    """Records written; each listed problem kind reported with the task and annotation; counts add up."""
    assert code == 0, captured.err
    lines = [x for x in captured.err.splitlines() if x.startswith("problem:")]
    assert len(lines) == problems, captured.err
    for kind in kinds:
        assert any(f": {kind}: " in x for x in lines), (kind, lines)
    assert all(re.search(r"(task|record) \S+|\.jsonl?:\d+", x) for x in lines)
    m = re.search(r"read (\d+) annotations: wrote (\d+) records", captured.out)
    assert m and int(m.group(2)) == len(out.read_text().splitlines())
    assert int(m.group(1)) == int(m.group(2)) + problems
    return [json.loads(x) for x in out.read_text().splitlines()]


# -- whole files that cannot be read: one error line ------------------------------------------------
def test_deep_nesting_non_utf8_and_broken_files_are_one_error_line(tmp_path, capsys):
    one_error(*run(tmp_path, capsys, "[" * 200_000 + "]" * 200_000), "nested deeper")
    deep_data = '[{"id": 1, "data": {"prompt": ' + "[" * 100_000 + "]" * 100_000 + ', "answer": "a"}}]'
    one_error(*run(tmp_path, capsys, deep_data), "nested deeper")
    one_error(*run(tmp_path, capsys, b'[{"data": {"prompt": "caf\xe9"}}]'), r"not valid UTF-8 \(byte \d+, line 1\)")
    one_error(*run(tmp_path, capsys, b'{"text": "a"}\n{"text": "\xff"}\n', name="d.jsonl"), "line 2")
    one_error(*run(tmp_path, capsys, '{"text": "' + "[" * 0 + '"}\n' + "[" * 100_000 + "\n", name="e.jsonl"),
              "nested deeper|not valid JSON")
    one_error(*run(tmp_path, capsys, json.dumps([task([annotation()])])[:-3]), "not valid JSON")
    one_error(*run(tmp_path, capsys, {"tasks": 3}), "expected a JSON list")


# -- annotations that cannot be read: problems, counted ----------------------------------------------
WRONG_TYPES = [
    ("annotations is an object", task({"0": annotation()}), "bad_shape"),
    ("result is an object", task([annotation(result={"0": span()})]), "bad_shape"),
    ("result is text", task([annotation(result="Boston is wrong")]), "bad_shape"),
    ("a result is a number", task([annotation(result=[3, critique()])]), "bad_shape"),
    ("value is a list", task([annotation(result=[dict(span(), value=[1, 2]), critique()])]), "bad_shape"),
    ("labels is text", task([annotation(result=[dict(span(), value={"start": CITY, "end": CITY + 6,
                                                                      "labels": "bad"}), critique()])]), "bad_shape"),
    ("two labels", task([annotation(result=[span(label=["bad", "good"]) | {"value": {
        "start": CITY, "end": CITY + 6, "labels": ["bad", "good"]}}, critique()])]), "unknown_label"),
    ("a label is a number", task([annotation(result=[dict(span(), value={"start": CITY, "end": CITY + 6,
                                                                          "labels": [1]}), critique()])]), "bad_shape"),
    ("textarea text is a string", task([annotation(result=[span(), dict(critique(), value={"text": "abc"})])]),
     "bad_shape"),
    ("textarea text holds a number", task([annotation(result=[span(), dict(critique(), value={"text": [5]})])]),
     "bad_shape"),
    ("choices is text", task([annotation(result=[span(), critique(), {
        "id": "v", "type": "choices", "from_name": "correct", "value": {"choices": "correct"}}])]), "bad_shape"),
    ("offsets are text", task([annotation(result=[span(start="30", end="36"), critique()])]), "bad_offset"),
    ("offsets are floats", task([annotation(result=[span(start=31.0, end=37.0), critique()])]), "bad_offset"),
    ("an offset is true", task([annotation(result=[span(start=True, end=3), critique()])]), "bad_offset"),
    ("an unknown result type", task([annotation(result=[span(), dict(critique(), type="video")])]), "bad_shape"),
    ("lead_time is text", task([annotation(lead_time="12 s")]), "bad_shape"),
    ("lead_time is an object", task([annotation(lead_time={"s": 1})]), "bad_shape"),
    ("completed_by is a list", task([annotation(who=[1, 2])]), "bad_shape"),
    ("the prompt is a number", task([annotation()], prompt=12), "missing_prompt"),
    ("the answer is a list", task([annotation()], answer=["a"]), "missing_answer"),
    ("task id is a nested object", task([annotation()], problem_id={"a": [1]}), "bad_shape"),
    ("created_at is a number", task([annotation(created_at=5)]), "bad_shape"),
]


@pytest.mark.parametrize("what, item, kind", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_fields_of_the_wrong_type_are_problems_not_crashes(what, item, kind, tmp_path, capsys):
    good = task([annotation(who=2, aid=2)], tid=8)
    records = accounted(*run(tmp_path, capsys, [item, good]), problems=1, kinds=[kind])
    assert len(records) == 1 and records[0]["annotator"] == "user-2"


@pytest.mark.parametrize("field", ["prompt", "answer", "critique", "label", "annotator", "revision", "comment"])
def test_lone_surrogates_anywhere_are_a_problem_and_writing_never_fails(field, tmp_path, capsys):
    bad = "x\ud800y"
    item = task([annotation()])
    if field in ("prompt", "answer"):
        item["data"][field] = bad
    elif field == "critique":
        item["annotations"][0]["result"][1]["value"]["text"] = [bad]
    elif field == "label":
        item["annotations"][0]["result"][0]["value"]["labels"] = [bad]
    elif field == "annotator":
        item["annotations"][0]["completed_by"] = {"email": bad}
    elif field == "revision":
        item["annotations"][0]["result"].append({"id": "e", "from_name": "revision", "type": "textarea",
                                                 "value": {"text": [bad]}})
    else:
        item["annotations"][0]["result"].append({"id": "r1", "from_name": "comment", "type": "textarea",
                                                 "value": {"start": CITY, "end": CITY + 6, "text": [bad]}})
    text = json.dumps([item, task([annotation(who=2, aid=2)], tid=8)])  # \ud800 escapes in the file
    assert "\\ud800" in text
    kinds = ["bad_text"] if field not in ("prompt", "answer") else \
        ["missing_prompt" if field == "prompt" else "missing_answer", "bad_text"]
    code, captured, out = run(tmp_path, capsys, text)
    lines = [x for x in captured.err.splitlines() if x.startswith("problem:")]
    assert code == 0 and len(lines) == 1 and any(f": {k}: " in lines[0] for k in kinds), captured.err
    records = read_annotations(out)
    assert len(records) == 1 and "\ud800" not in out.read_text(encoding="utf-8")


def test_nothing_is_silently_fixed_split_or_dropped(tmp_path, capsys):
    # two spans under one result id: both would have been one; now the annotation is a problem
    twice = task([annotation(result=[span(rid="r1"), span(0, 3, "good", rid="r1"), critique()])])
    accounted(*run(tmp_path, capsys, [twice, task([annotation(who=2, aid=2)], tid=8)]), 1, ["duplicate_region"])
    # the same person annotating one item twice, differently: two records with distinct ids
    again = task([annotation(aid=1), annotation(aid=2, result=[span(0, 3, "good"), critique("Name is right.")])])
    records = accounted(*run(tmp_path, capsys, [again]), 0, [])
    assert len({r["id"] for r in records}) == 2
    # markup in an annotator's name is rejected like markup in a critique
    accounted(*run(tmp_path, capsys, [task([annotation(who={"email": "<b>bob</b>"})]),
                                      task([annotation(who=2, aid=2)], tid=8)]), 1, ["html"])
    # non-numeric lead_time is not passed through
    accounted(*run(tmp_path, capsys, [task([annotation(lead_time="NaN")]), task([annotation(who=2)], tid=8)]), 1,
              ["bad_shape"])


def test_argilla_records_of_another_shape_are_problems_not_dropped(tmp_path, capsys):
    good = {"id": "r2", "fields": {"prompt": PROMPT, "answer": ANSWER},
            "responses": {"spans": [{"user_id": "ann", "value": [{"start": CITY, "end": CITY + 6, "label": "bad"}]}],
                          "critique": [{"user_id": "ann", "value": "The city is wrong."}]}}
    old = {"id": "r1", "fields": {"prompt": PROMPT, "answer": ANSWER},  # Argilla 1.x: one response object per value
           "responses": {"critique": {"user_id": "ann", "value": "The city is wrong."}}}
    accounted(*run(tmp_path, capsys, [old, good], name="a.json", fmt="argilla"), 1, ["bad_shape"])
    v1 = {"inputs": {"prompt": PROMPT}, "annotation": "x", "annotation_agent": "ann"}  # Argilla 1.x text record
    accounted(*run(tmp_path, capsys, [v1, good], name="a.json", fmt="argilla"), 1, ["bad_shape"])
    # a string-valued question that is neither a span question nor a known one is not taken as the critique
    rating = {**good, "id": "r3", "responses": {**good["responses"], "tone": [{"user_id": "ann", "value": "fine"}]}}
    accounted(*run(tmp_path, capsys, [rating, good], name="a.json", fmt="argilla"), 1, ["unknown_question"])
    empty = {**good, "id": "r4", "responses": {}}
    accounted(*run(tmp_path, capsys, [empty, good], name="a.json", fmt="argilla"), 1, ["empty"])


def test_doccano_and_prodigy_shapes(tmp_path, capsys):
    good = {"id": 2, "text": ANSWER, "prompt": PROMPT, "label": [[CITY, CITY + 6, "bad"]], "Comments": ["Wrong."]}
    comments_text = dict(good, id=1, Comments="Wrong city.")  # a string would have been split into characters
    labels_text = dict(good, id=3, label="bad")
    accounted(*run(tmp_path, capsys, "\n".join(json.dumps(x) for x in (comments_text, labels_text, good)),
                   name="d.jsonl", fmt="doccano"), 2, ["bad_shape"])
    p_good = {"text": ANSWER, "meta": {"prompt": PROMPT}, "spans": [{"start": CITY, "end": CITY + 6, "label": "BAD"}],
              "critique": "Wrong.", "answer": "accept", "_input_hash": 5}
    odd = [dict(p_good, _input_hash=1, meta="prompt"), dict(p_good, _input_hash=2, spans={"a": 1}),
           dict(p_good, _input_hash=3, critique=["a"])]
    accounted(*run(tmp_path, capsys, "\n".join(json.dumps(x) for x in [*odd, p_good]), name="p.jsonl",
                   fmt="prodigy"), 3, ["bad_shape"])


def test_every_reader_of_records_gives_one_error_line(tmp_path):
    """read_annotations (the human provider, offline FM and SD, the warm start, reward-model data)."""
    cases = {
        "nested": '{"prompt": "p", "answer": "a", "critique": "c", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        "surrogate": '{"prompt": "p\\ud800", "answer": "a", "critique": "c", "spans": []}\n',
        "critique_int": '{"prompt": "p", "answer": "a", "critique": 5, "spans": []}\n',
        "spans_text": '{"prompt": "p", "answer": "a", "critique": "c", "spans": "Boston"}\n',
        "revision_list": '{"prompt": "p", "answer": "a", "critique": "c", "spans": [], "revision": ["x"]}\n',
        "not_utf8": b'{"prompt": "\xff", "answer": "a", "critique": "c"}\n',
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.jsonl"
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        with pytest.raises(DataError, match=rf"{name}\.jsonl:1"):
            read_annotations(path)


def test_read_export_accounts_for_every_annotation(tmp_path):
    items = [task([annotation(), annotation(aid=2, who=2, lead_time="x"), annotation(aid=3, who=3,
                                                                                      was_cancelled=True)]),
             {"id": 9}, task("nope", tid=10)]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(items))
    records, problems = read_export(path)
    assert len(records) == 1 and sorted(p.reason for p in problems) == ["bad_shape", "bad_shape", "bad_shape",
                                                                        "cancelled"]
