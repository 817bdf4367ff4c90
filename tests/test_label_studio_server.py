"""The Label Studio round trip against a real server (label-studio in its own virtualenv, which
`make test` installs): start it on 127.0.0.1, create a project with rltf's labeling config, import
rltf's tasks with pre-annotations, post an annotation as a person would (through the API), export,
and import the export back into annotation records. The server is stopped at the end either way.
"""
import json
import os

import pytest

from rltf.cli import main
from rltf.feedback.records import read_annotations
from rltf.spans.labelstudio import LabelStudioClient

from label_studio_server import LS_BIN, LabelStudioServer

ANSWER = "Tom is a 31-year-old chef from Boston."
CORRECTED = "Tom is a 31-year-old chef from Denver."
PROMPT = "Summarise the post's key facts."

pytestmark = pytest.mark.skipif(not LS_BIN.exists(), reason=f"label-studio not installed at {LS_BIN} (`make test` "
                                                             "installs it into .venv-labelstudio)")


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    with LabelStudioServer(LS_BIN, tmp_path_factory.mktemp("label-studio")) as server:
        yield server.url, server.token


def test_round_trip_through_a_real_label_studio(label_studio, tmp_path):
    url, token = label_studio
    city = ANSWER.index("Boston")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"id": "a1", "prompt": PROMPT, "answer": ANSWER, "task": "fact_summary",
                                   "critique": "The city is wrong.",
                                   "spans": [{"quote": "Boston", "label": "negative", "start": city}]}) + "\n")
    os.environ["RLTF_TEST_LS_TOKEN"] = token
    try:
        assert main(["label-studio", "export", "--episodes", str(answers), "--out", str(tmp_path / "tasks.json"),
                     "--url", url, "--token-env", "RLTF_TEST_LS_TOKEN", "--title", "round trip"]) == 0
    finally:
        del os.environ["RLTF_TEST_LS_TOKEN"]
    client = LabelStudioClient(url, token)
    project = max(p["id"] for p in client._send("GET", "/api/projects")["results"])
    (task,) = client.tasks(project)
    assert task["data"]["answer"] == ANSWER
    # A person corrects the suggestion: keeps "Boston" as bad with a comment, marks "Tom" good, writes a critique.
    result = [
        {"id": "r1", "from_name": "label", "to_name": "answer", "type": "labels",
         "value": {"start": city, "end": city + 6, "text": "Boston", "labels": ["bad"]}},
        {"id": "r1", "from_name": "comment", "to_name": "answer", "type": "textarea",
         "value": {"start": city, "end": city + 6, "text": ["The post says Denver."]}},
        {"id": "r2", "from_name": "label", "to_name": "answer", "type": "labels",
         "value": {"start": 0, "end": 3, "text": "Tom", "labels": ["good"]}},
        {"id": "c", "from_name": "critique", "to_name": "answer", "type": "textarea",
         "value": {"text": ["Right name and age; the city is not the one in the post."]}},
        {"id": "v", "from_name": "correct", "to_name": "answer", "type": "choices", "value": {"choices": ["incorrect"]}},
        {"id": "e", "from_name": "revision", "to_name": "answer", "type": "textarea",
         "value": {"text": [CORRECTED]}},
    ]
    client.annotate(task["id"], result, lead_time=20.0)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(client.export(project)))
    assert main(["label-studio", "import", str(export), "--out", str(tmp_path / "human.jsonl")]) == 0
    (record,) = read_annotations(tmp_path / "human.jsonl")
    assert record["prompt"] == PROMPT and record["answer"] == ANSWER and record["correct"] is False
    assert record["critique"] == "Right name and age; the city is not the one in the post."
    assert sorted((s.quote, s.label, s.start) for s in record["spans"]) == [("Boston", "negative", city),
                                                                            ("Tom", "positive", 0)]
    assert record["annotator"] == "user-1" and record["rltf_id"] == "a1"  # the JSON export names people by user id
    assert record["task"] == "fact_summary"
    raw = json.loads((tmp_path / "human.jsonl").read_text().splitlines()[0])
    assert {s["quote"]: s.get("comment") for s in raw["spans"]}["Boston"] == "The post says Denver."
    # the suggestions arrived as predictions
    assert client._send("GET", f"/api/tasks/{task['id']}")["total_predictions"] == 1
    # the person's corrected answer is the record's revision, and the warm start trains on it
    assert record["revision"] == CORRECTED
    assert main(["train", "revision-sft", "--model", "tiny-random", "--task", "fact_summary", "--offline-data",
                 str(tmp_path / "human.jsonl"), "--prompts-per-step", "1", "--max-steps", "1", "--eval-n", "2",
                 "--eval-at-start", "false", "--output-dir", str(tmp_path / "warm")]) == 0
    trained = [json.loads(x) for x in (tmp_path / "warm" / "metrics.jsonl").read_text().splitlines()]
    assert trained[0]["offline/records"] == 1.0 and trained[0]["loss/sft"] > 0
