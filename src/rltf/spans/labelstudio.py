"""Answers to review -> Label Studio: the labeling configuration, tasks with pre-annotations, and a
small client of Label Studio's REST API (create a project, import tasks, export annotations).

The labeling interface shows the prompt and the answer; a reviewer selects character spans of the
answer, labels each ``good`` or ``bad`` and may comment on it (a per-region text area), writes a
critique of the whole answer, and may mark it correct or incorrect. Suggestions from any span
feedback provider (critic, judge, reward model) arrive as ``predictions``, so people correct them
instead of starting blank. :func:`rltf.spans.human.read_export` reads the export back.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Sequence

from rltf.errors import RltfError
from rltf.feedback.base import Critique

LABELING_CONFIG = """<View>
  <Style>.htx-text { white-space: pre-wrap; }</Style>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt" selectionEnabled="false"/>
  <Header value="Answer: select a span, label it good or bad, and say why"/>
  <Labels name="label" toName="answer">
    <Label value="bad" background="#e5484d" hotkey="b"/>
    <Label value="good" background="#30a46c" hotkey="g"/>
  </Labels>
  <Text name="answer" value="$answer"/>
  <TextArea name="comment" toName="answer" perRegion="true" editable="true" rows="2"
            placeholder="What is wrong (or right) in this span?"/>
  <Header value="Critique of the whole answer (what to fix, without giving the answer away)"/>
  <TextArea name="critique" toName="answer" editable="true" maxSubmissions="1" rows="4"/>
  <Header value="Corrected answer (optional): the answer rewritten so that it is right, changing as little as possible"/>
  <TextArea name="revision" toName="answer" editable="true" maxSubmissions="1" rows="4"/>
  <Choices name="correct" toName="answer" choice="single" showInline="true">
    <Choice value="correct"/>
    <Choice value="incorrect"/>
  </Choices>
</View>
"""
LS_LABELS = {"positive": "good", "negative": "bad"}


def prediction(answer: str, critique: Critique, model_version: str) -> dict:
    """A Label Studio prediction from a critique whose spans are located in ``answer`` (each span
    at its ``start``, or at its first occurrence; spans not in the answer are left out)."""
    result = []
    for k, span in enumerate(critique.spans):
        start = span.start if span.start is not None else answer.find(span.quote)
        if start < 0 or answer[start:start + len(span.quote)] != span.quote:
            continue
        value = {"start": start, "end": start + len(span.quote), "text": span.quote}
        result.append({"id": f"s{k}", "from_name": "label", "to_name": "answer", "type": "labels",
                       "value": {**value, "labels": [LS_LABELS[span.label]]}})
    if critique.text:
        result.append({"id": "critique", "from_name": "critique", "to_name": "answer", "type": "textarea",
                       "value": {"text": [critique.text]}})
    return {"model_version": model_version, "result": result}


def make_tasks(items: Sequence[dict], critiques: Sequence[Critique | None] | None = None,
               model_version: str = "rltf") -> list[dict]:
    """Label Studio tasks: ``items`` are dicts with ``prompt`` and ``answer`` (and any metadata:
    ``task``, ``problem_id``, ``reference``, ``rltf_id``), each with an optional suggested critique."""
    tasks = []
    for k, item in enumerate(items):
        task: dict[str, Any] = {"data": {key: v for key, v in item.items() if v is not None}}
        critique = critiques[k] if critiques else None
        if critique is not None and not critique.fallback:
            task["predictions"] = [prediction(item["answer"], critique, model_version)]
        tasks.append(task)
    return tasks


class LabelStudioError(RltfError):
    """Label Studio's API refused a request or could not be reached."""


class LabelStudioClient:
    """The few calls of Label Studio's REST API rltf needs. ``token`` is a personal access token
    (refreshed into a short-lived access token, as Label Studio 1.2x asks) or a legacy API token."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._access: str | None = None

    def _auth(self) -> str:
        if self._access is None:
            try:  # a personal access token (a JWT refresh token) -> access token
                reply = self._send("POST", "/api/token/refresh", {"refresh": self.token}, auth=None)
                self._access = f"Bearer {reply['access']}"
            except LabelStudioError:
                self._access = f"Token {self.token}"  # a legacy token
        return self._access

    def _send(self, method: str, path: str, body: Any = None, auth: str | None = "default") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth == "default":
            request.add_header("Authorization", self._auth())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            raise LabelStudioError(f"Label Studio {method} {path}: HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            raise LabelStudioError(f"Label Studio at {self.url} cannot be reached: {err}") from None
        return json.loads(raw) if raw.strip() else None

    def create_project(self, title: str, label_config: str = LABELING_CONFIG) -> int:
        return int(self._send("POST", "/api/projects", {"title": title, "label_config": label_config})["id"])

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        reply = self._send("POST", f"/api/projects/{project}/import", tasks)
        return int(reply.get("task_count", len(tasks))) if isinstance(reply, dict) else len(tasks)

    def tasks(self, project: int) -> list[dict]:
        reply = self._send("GET", f"/api/tasks?project={project}&page_size=1000")
        return reply["tasks"] if isinstance(reply, dict) else reply

    def annotate(self, task_id: int, result: list[dict], lead_time: float = 0.0) -> dict:
        """Post an annotation as the token's user (what a person's Submit does)."""
        return self._send("POST", f"/api/tasks/{task_id}/annotations", {"result": result, "lead_time": lead_time})

    def export(self, project: int) -> list[dict]:
        """Label Studio's JSON export of every task with its annotations."""
        return self._send("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")

    def wait_until_up(self, seconds: float = 180.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self._send("GET", "/health", auth=None)
                return
            except LabelStudioError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
