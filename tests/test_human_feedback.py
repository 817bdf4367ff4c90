"""Human feedback: tool exports -> annotation records (validated), the `human` provider, agreement,
offline RLTF-FM and reward-model SFT on people's records, and the `rltf label-studio` commands."""
import json
import subprocess
import sys

import pytest
import torch

from rltf.cli import main
from rltf.errors import ConfigError, DataError
from rltf.feedback import HumanFeedback, JudgeConfig, build_feedback
from rltf.feedback.base import Span
from rltf.feedback.records import read_annotations
from rltf.spans.agreement import agreement
from rltf.spans.human import read_export
from rltf.spans.labelstudio import LABELING_CONFIG, make_tasks, prediction
from rltf.tasks import get_task

ANSWER = "Tom is a 31-year-old chef from Boston."
PROMPT = "Summarise the post's key facts."


def ls_result(start, end, label, comment=None, rid="r1"):
    out = [{"id": rid, "from_name": "label", "to_name": "answer", "type": "labels",
            "value": {"start": start, "end": end, "text": ANSWER[start:end], "labels": [label]}}]
    if comment is not None:
        out.append({"id": rid, "from_name": "comment", "to_name": "answer", "type": "textarea",
                    "value": {"start": start, "end": end, "text": [comment]}})
    return out


def ls_annotation(result, who=1, critique="The city is wrong.", verdict="incorrect", aid=1):
    result = list(result) + [{"id": "c", "from_name": "critique", "to_name": "answer", "type": "textarea",
                              "value": {"text": [critique]}}]
    if verdict:
        result.append({"id": "v", "from_name": "correct", "to_name": "answer", "type": "choices",
                       "value": {"choices": [verdict]}})
    return {"id": aid, "completed_by": who, "result": result, "created_at": "2026-11-26T10:00:00Z", "lead_time": 12.5,
            "was_cancelled": False}


def ls_export(annotations, answer=ANSWER, tid=7):
    return [{"id": tid, "data": {"prompt": PROMPT, "answer": answer, "task": "fact_summary", "problem_id": "p7"},
             "annotations": annotations}]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else "\n".join(json.dumps(x) for x in data) + "\n")
    return path


def test_label_studio_export_becomes_one_record_per_annotator(tmp_path):
    city = ANSWER.index("Boston")
    export = ls_export([ls_annotation(ls_result(city, city + 6, "bad", "moved to Denver"), who=1, aid=1),
                        ls_annotation(ls_result(0, 3, "good") + ls_result(city, city + 6, "bad", rid="r2"), who=2,
                                      aid=2, verdict=None)])
    records, problems = read_export(write(tmp_path, "export.json", export))
    assert problems == [] and len(records) == 2
    a, b = records
    assert a["annotator"] == "user-1" and a["critique"] == "The city is wrong." and a["correct"] is False
    assert a["spans"] == [{"quote": "Boston", "label": "negative", "start": city, "end": city + 6, "match": "offset",
                           "comment": "moved to Denver"}]
    assert b["correct"] is None and [s["label"] for s in b["spans"]] == ["positive", "negative"]
    assert a["task"] == "fact_summary" and a["problem_id"] == "p7" and a["lead_time"] == 12.5
    assert a["prompt"] == PROMPT and a["answer"] == ANSWER and a["source"] == "label-studio"


@pytest.mark.parametrize("result,reason", [
    (ls_result(30, 80, "bad"), "bad_offset"),  # past the end of the answer
    ([{"id": "x", "type": "labels", "from_name": "label", "to_name": "answer",
       "value": {"start": 0, "end": 3, "text": "Ann", "labels": ["bad"]}}], "bad_offset"),  # text is not there
    (ls_result(0, 3, "typo"), "unknown_label"),
    (ls_result(0, 3, "bad", "<script>alert(1)</script>"), "html"),
    ([{"id": "x", "type": "labels", "value": "oops"}], "bad_shape"),
])
def test_bad_annotations_are_reported_not_fixed(tmp_path, result, reason):
    good = ls_annotation(ls_result(0, 3, "good"), who=2, aid=2)
    records, problems = read_export(write(tmp_path, "export.json", ls_export([ls_annotation(result), good])))
    assert [p.reason for p in problems] == [reason] and len(records) == 1  # the good one is kept
    assert "task 7" in str(problems[0]) and "annotation 1" in str(problems[0])


def test_missing_answer_duplicates_empty_and_cancelled(tmp_path):
    ann = ls_annotation(ls_result(0, 3, "good"))
    items = ls_export([ann, dict(ann, id=2)])  # the same person, the same content twice
    items += ls_export([ls_annotation([], critique="")], tid=8)  # nothing said
    items += ls_export([ls_annotation(ls_result(0, 3, "good"))], answer="", tid=9)
    items += ls_export([dict(ann, was_cancelled=True)], tid=10)
    items.append({"id": 11})  # no data
    records, problems = read_export(write(tmp_path, "export.json", items))
    assert sorted(p.reason for p in problems) == ["bad_shape", "cancelled", "duplicate", "empty", "missing_answer"]
    assert len(records) == 1


def test_unreadable_exports_are_one_line_errors(tmp_path):
    whole = json.dumps(ls_export([ls_annotation(ls_result(0, 3, "good"))]))
    truncated = tmp_path / "cut.json"
    truncated.write_text(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="not valid JSON.*truncated"):
        read_export(truncated)
    with pytest.raises(DataError, match="more than the limit"):
        read_export(write(tmp_path, "big.json", [1] * 100), max_bytes=50)
    with pytest.raises(DataError, match="expected a JSON export"):
        read_export(write(tmp_path, "shape.json", "a string"))
    with pytest.raises(DataError, match="expected a JSON list"):
        read_export(write(tmp_path, "number.json", {"tasks": 3}), fmt="label-studio")
    with pytest.raises(DataError, match="is empty"):
        read_export(write(tmp_path, "empty.jsonl", []))
    with pytest.raises(DataError, match="no such file"):
        read_export(tmp_path / "missing.json")


def test_argilla_doccano_and_prodigy_read_into_the_same_records(tmp_path):
    city = ANSWER.index("Boston")
    argilla = [{"id": "r1", "fields": {"prompt": PROMPT, "answer": ANSWER},
                "responses": {"spans": [{"user_id": "ann", "value": [{"start": city, "end": city + 6, "label": "bad"}]}],
                              "critique": [{"user_id": "ann", "value": "The city is wrong."}],
                              "correct": [{"user_id": "ann", "value": "incorrect"}]}}]
    doccano = [{"id": 1, "text": ANSWER, "prompt": PROMPT, "label": [[city, city + 6, "bad"]],
                "Comments": ["The city is wrong."], "user": "ann"}]
    prodigy = [{"text": ANSWER, "meta": {"prompt": PROMPT}, "spans": [{"start": city, "end": city + 6, "label": "BAD"}],
                "critique": "The city is wrong.", "answer": "accept", "_annotator_id": "ann", "_input_hash": 5},
               {"text": ANSWER, "meta": {"prompt": PROMPT}, "spans": [], "answer": "reject", "_input_hash": 6}]
    seen = []
    for name, data, fmt in (("a.json", argilla, "argilla"), ("d.jsonl", doccano, "doccano"), ("p.jsonl", prodigy, "prodigy")):
        records, problems = read_export(write(tmp_path, name, data))  # the format is detected
        assert len(records) == 1 and records[0]["source"] == fmt
        r = records[0]
        seen.append((r["prompt"], r["answer"], r["critique"], [(s["quote"], s["label"]) for s in r["spans"]]))
        assert [p.reason for p in problems] == (["not_accepted"] if fmt == "prodigy" else [])
    assert seen[0] == seen[1] == seen[2] == (PROMPT, ANSWER, "The city is wrong.", [("Boston", "negative")])


def test_human_provider_serves_stored_feedback_and_counts_misses(tmp_path):
    task = get_task("fact_summary")
    problem = task.problems("train", 1)[0]
    question = task.format_question(problem)
    path = write(tmp_path, "h.jsonl", [{"prompt": question, "answer": ANSWER, "critique": "Check the city.",
                                        "spans": [{"quote": "Boston", "label": "negative", "start": 31}],
                                        "annotator": "ann"}])
    provider = build_feedback("human", judge=JudgeConfig(human_feedback=str(path)))
    hit = provider.critique(task, problem, ANSWER + "  ", task.score(problem, ANSWER))
    assert hit.text == "Check the city." and hit.spans == [Span("Boston", "negative", 31)] and hit.fallback is None
    miss = provider.critique(task, problem, "Something else.", task.score(problem, "Something else."))
    assert miss.fallback == "no_human_feedback" and miss.spans == [] and provider.stats.reasons == {"no_human_feedback": 1}
    with pytest.raises(ConfigError, match="human_feedback=FILE"):
        build_feedback("human")
    with pytest.raises(DataError, match="no human feedback records by 'bob'"):
        HumanFeedback(read_annotations(path), annotator="bob")


def test_agreement_by_hand():
    def rec(who, spans, correct=None, answer=ANSWER):
        return {"prompt": PROMPT, "answer": answer, "critique": "c" * (3 if who == "a" else 5), "annotator": who,
                "correct": correct, "spans": [Span(answer[s:e], label, s) for s, e, label in spans]}
    city = ANSWER.index("Boston")
    records = [rec("a", [(0, 3, "positive"), (city, city + 6, "negative")], False),
               rec("b", [(city, city + 6, "negative")], False),
               rec("a", [(0, 2, "negative")], True, answer="No."), rec("b", [], False, answer="No.")]
    report = agreement(records)
    # item 1: 1 match, 2 + 1 spans; item 2: 0 matches, 1 + 0 spans -> 2 * 1 / 4
    assert report["between_annotators"]["span_f1"] == pytest.approx(0.5)
    assert report["between_annotators"]["span_f1_by_label"]["negative"] == pytest.approx(2 / 3)
    assert report["between_annotators"]["verdict_agreement"] == pytest.approx(0.5)
    assert report["annotators"]["a"]["critique_chars_mean"] == 3 and report["annotators"]["b"]["labels"]["negative"] == 1
    against = agreement(records[:1], reference=[rec("critic", [(city, city + 6, "negative")])])["against_reference"]
    assert against["span_f1"] == pytest.approx(2 / 3) and against["pairs"] == 1


def test_tasks_carry_predictions_in_label_studio_form():
    from rltf.feedback.base import Critique

    crit = Critique("The city is wrong.", [Span("Boston", "negative"), Span("Zurich", "negative")])
    pred = prediction(ANSWER, crit, "critic")
    labels = [r for r in pred["result"] if r["type"] == "labels"]
    assert labels == [{"id": "s0", "from_name": "label", "to_name": "answer", "type": "labels",
                       "value": {"start": 31, "end": 37, "text": "Boston", "labels": ["bad"]}}]  # Zurich is not there
    tasks = make_tasks([{"prompt": PROMPT, "answer": ANSWER, "reference": None}], [crit])
    assert tasks[0]["data"] == {"prompt": PROMPT, "answer": ANSWER} and tasks[0]["predictions"][0]["model_version"] == "rltf"
    for name in ('name="label" toName="answer"', 'perRegion="true"', 'name="critique"', 'name="correct"', '"$answer"'):
        assert name in LABELING_CONFIG


def test_cli_export_import_round_trip(tmp_path, capsys):
    city = ANSWER.index("Boston")
    src = write(tmp_path, "answers.jsonl", [{"id": "a1", "prompt": PROMPT, "answer": ANSWER, "critique": "Wrong city.",
                                             "spans": [{"quote": "Boston", "label": "negative", "start": city}]}])
    assert main(["label-studio", "export", "--episodes", str(src), "--out", str(tmp_path / "tasks.json")]) == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert (tmp_path / "tasks.xml").read_text() == LABELING_CONFIG
    # a person accepts the suggestion: the annotation is the prediction's result, as Label Studio exports it
    tasks[0]["id"] = 1
    tasks[0]["annotations"] = [{"id": 1, "completed_by": {"email": "ann@example.org"},
                                "result": tasks[0]["predictions"][0]["result"]}]
    export = write(tmp_path, "export.json", tasks)
    bad = json.loads(json.dumps(tasks))
    bad[0]["annotations"][0]["result"][0]["value"]["end"] = 999
    assert main(["label-studio", "import", str(export), "--out", str(tmp_path / "h.jsonl")]) == 0
    (r,) = read_annotations(tmp_path / "h.jsonl")
    assert r["annotator"] == "ann@example.org" and r["critique"] == "Wrong city." and r["rltf_id"] == "a1"
    assert r["spans"] == [Span("Boston", "negative", city)]
    assert main(["label-studio", "import", str(write(tmp_path, "bad.json", bad)), "--out",
                 str(tmp_path / "h2.jsonl")]) == 2  # nothing usable
    err = capsys.readouterr().err
    assert "problem: bad.json: task 1, annotation 1 (ann@example.org): bad_offset" in err and not (tmp_path / "h2.jsonl").exists()
    assert main(["label-studio", "import", str(write(tmp_path, "mixed.json", bad + tasks)), "--out",
                 str(tmp_path / "h3.jsonl"), "--strict"]) == 2 and not (tmp_path / "h3.jsonl").exists()


def human_records(tmp_path, n=6):
    task = get_task("add2")
    rows = []
    for k, p in enumerate(task.problems("train", n)):
        rows.append({"prompt": task.format_question(p), "answer": f"The answer is \\boxed{{{k}}}.",
                     "critique": "Add the tens digits again, then the units.", "spans": [], "annotator": "ann"})
    return write(tmp_path, "human.jsonl", rows)


def test_offline_rltf_fm_trains_on_human_critiques(tmp_path):
    from rltf.methods import build_trainer, make_config

    data = human_records(tmp_path)
    cfg = make_config("rltf-fm", overrides=dict(model="tiny-random", task="add2", offline_data=str(data),
                                                prompts_per_step=3, learning_rate=3e-3, max_steps=6, eval_n=2,
                                                eval_every=0, eval_at_start=False, save_every=0, max_new_tokens=4,
                                                output_dir=str(tmp_path / "run")))
    tr = build_trainer(cfg, console=lambda s: None)
    before = [p.detach().clone() for p in tr.model.parameters()]
    losses = [tr.train_step()["loss/fm"] for _ in range(6)]
    assert not any(torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    assert losses[-1] < losses[0] and tr.generated_tokens == 0 and tr.stream.position == 18


def test_people_s_corrected_answers_train_rltf_sd_and_the_warm_start(tmp_path):
    """Records with a `revision` (a person's corrected answer): rltf-sd trains its SD term on them
    (question -> revision), rltf-sd+fm both terms, revision-sft the revision turn; records without one
    are not SD targets, and a file without any is a one-line error for the methods that need them."""
    from rltf.methods import build_trainer, make_config

    task = get_task("add2")
    rows = [{"prompt": task.format_question(p), "answer": "\\boxed{1}", "critique": "Add the tens digits again.",
             "spans": [], "annotator": "ann", **({"revision": f"{p.answer}"} if k % 2 == 0 else {})}
            for k, p in enumerate(task.problems("train", 4))]
    data = write(tmp_path, "corrected.jsonl", rows)
    common = dict(model="tiny-random", task="add2", offline_data=str(data), prompts_per_step=4, learning_rate=3e-3,
                  eval_n=2, eval_every=0, eval_at_start=False, save_every=0, max_new_tokens=4, sd_mask_threshold=-100.0)
    sd = build_trainer(make_config("rltf-sd", overrides={**common, "output_dir": str(tmp_path / "sd")}),
                       console=lambda s: None)
    assert len(sd.stream.records) == 2  # only the records with a revision
    m = sd.train_step()
    assert m["offline/sd_rows"] == 4 and m["offline/fm_rows"] == 0 and m["loss/sd"] != 0 and "loss/rl" not in m
    both = build_trainer(make_config("rltf-sd+fm", overrides={**common, "output_dir": str(tmp_path / "both")}),
                         console=lambda s: None)
    m = both.train_step()
    assert m["offline/fm_rows"] == 4 and m["offline/sd_rows"] == 2 and m["loss/fm"] > 0
    sft = {k: v for k, v in common.items() if k != "sd_mask_threshold"}
    warm = build_trainer(make_config("revision-sft", overrides={**sft, "output_dir": str(tmp_path / "warm")}),
                         console=lambda s: None)
    losses = [warm.train_step()["loss/sft"] for _ in range(4)]
    assert losses[-1] < losses[0] and warm.generated_tokens == 0
    bare = write(tmp_path, "bare.jsonl", [{k: v for k, v in r.items() if k != "revision"} for r in rows])
    with pytest.raises(DataError, match="corrected answer"):
        build_trainer(make_config("revision-sft", overrides={**sft, "offline_data": str(bare),
                                                             "output_dir": str(tmp_path / "x")}), console=lambda s: None)
    with pytest.raises(ConfigError, match="clipped_is"):
        make_config("rltf-sd", overrides={**common, "sd_mode": "clipped_is"})


def test_label_studio_corrected_answer_becomes_the_record_s_revision(tmp_path):
    city = ANSWER.index("Boston")
    fixed = {"id": "e", "from_name": "revision", "to_name": "answer", "type": "textarea",
             "value": {"text": ["Tom is a 31-year-old chef from Denver."]}}
    export = ls_export([ls_annotation(ls_result(city, city + 6, "bad") + [fixed], who=1, aid=1),
                        ls_annotation(ls_result(0, 3, "good"), who=2, aid=2)])
    records, problems = read_export(write(tmp_path, "export.json", export))
    assert problems == [] and records[0]["revision"] == "Tom is a 31-year-old chef from Denver."
    assert records[0]["critique"] == "The city is wrong." and "revision" not in records[1]
    only = ls_export([ls_annotation([fixed], critique="", verdict=None)])  # a correction alone is a record
    records, problems = read_export(write(tmp_path, "only.json", only))
    assert problems == [] and records[0]["revision"].endswith("Denver.")
    bad = dict(fixed, value={"text": ["<script>x</script>"]})
    _, problems = read_export(write(tmp_path, "bad.json", ls_export([ls_annotation([bad])])))
    assert [p.reason for p in problems] == ["html"]


def test_cli_trains_fm_and_reward_model_on_imported_records(tmp_path):
    data = human_records(tmp_path, n=4)
    common = ["--model", "tiny-random", "--set", "save_every=0"]
    fm = subprocess.run([sys.executable, "-m", "rltf.cli", "train", "rltf-fm", *common, "--set", f"offline_data={data}",
                         "--set", "max_steps=2", "--set", "prompts_per_step=2", "--set", "eval_n=2", "--set",
                         "eval_at_start=false", "--set", "max_new_tokens=4", "--set", f"output_dir={tmp_path / 'fm'}"],
                        capture_output=True, text=True, timeout=300)
    assert fm.returncode == 0, fm.stderr[-2000:]
    assert list((tmp_path / "fm").glob("checkpoint-2/model/config.json"))
    rm = subprocess.run([sys.executable, "-m", "rltf.cli", "train", "reward-model", *common, "--set",
                         f"train_data={data}", "--set", "epochs=1", "--set", "batch_size=2", "--set",
                         f"output_dir={tmp_path / 'rm'}"], capture_output=True, text=True, timeout=300)
    assert rm.returncode == 0, rm.stderr[-2000:]
    assert list((tmp_path / "rm").glob("checkpoint-*/model/config.json"))
