"""Annotation: (prompt, answer) -> critique + labelled spans with character offsets (METHODS §2.1).

:func:`annotate` asks a dual-feedback provider (programmatic critic, LLM judge, local judge, span
reward model) for each answer and writes one record per answer::

    {"id", "problem_id", "task", "prompt", "answer", "reference", "critique",
     "spans": [{"quote", "label", "start", "end", "match"}],   # answer[start:end] is the located text
     "unmatched": [{"quote", "label"}],                         # spans not found in the answer
     "neutral": [...], "score": {...}, "metrics": {...}, "provenance": {...}}

A provider failure (timeout, unreadable reply, ...) is counted by reason and gives NO record.
:class:`AnnotationWriter` appends records to JSONL as they are made, so an interrupted run resumes
by skipping the ids already written.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from rltf.errors import DataError
from rltf.feedback.base import Span
from rltf.feedback.records import read_annotations
from rltf.spans.align import locate
from rltf.tasks.base import Score
from rltf.tasks.jsonl import json_line


def span_records(answer: str, spans: Sequence[Span], fuzzy_threshold: float = 90.0) -> tuple[list[dict], list[dict]]:
    """Locate each span in ``answer``: (located spans as JSON records, one per occurrence; unmatched spans)."""
    located, unmatched = [], []
    for span in spans:
        match = locate(answer, span.quote, span.start, fuzzy_threshold)
        if match.kind == "not_found":
            unmatched.append({"quote": span.quote, "label": span.label})
        for s, e in match.ranges:
            located.append({"quote": answer[s:e], "label": span.label, "start": s, "end": e, "match": match.kind})
    return located, unmatched


def annotate(task, problems: Sequence, answers: Sequence[str], provider, ids: Sequence[str] | None = None,
             scores: Sequence | None = None, provenance: dict[str, Any] | None = None) -> tuple[list[dict], dict[str, int]]:
    """Annotate ``answers[i]`` to ``problems[i]``: (records, failures by reason)."""

    scores = list(scores) if scores is not None else [task.score(p, a) for p, a in zip(problems, answers)]
    items = [(task, p, a, s if isinstance(s, Score) else Score(**s)) for p, a, s in zip(problems, answers, scores)]
    critiques = provider.critique_many(items)
    records, failures = [], {}
    for k, ((_, problem, answer, score), critique) in enumerate(zip(items, critiques)):
        if critique.fallback:
            failures[critique.fallback] = failures.get(critique.fallback, 0) + 1
            continue
        located, unmatched = span_records(answer, critique.spans)
        record = {
            "id": ids[k] if ids else f"{problem.id}#{k}", "problem_id": problem.id, "task": task.name,
            "prompt": task.format_question(problem), "answer": answer, "reference": problem.answer,
            "critique": critique.text, "spans": located, "unmatched": unmatched,
            "score": score.to_dict(),
            "provenance": {"provider": critique.source or provider.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           **(provenance or {})},
        }
        if task.metric_names:
            record["metrics"] = task.metrics(problem, answer)
        records.append(record)
    return records, failures


class AnnotationWriter:
    """Appends records to a JSONL file; knows which ids are already there (resume)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: set[str] = set()
        if self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    self.done.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    if n == len(lines):  # a line cut short by a killed run: drop it and go on
                        self.path.write_text("".join(x + "\n" for x in lines[:-1] if x.strip()), encoding="utf-8")
                        break
                    raise DataError(f"{self.path}:{n}: not an annotation record; refusing to append to it") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, records: Sequence[dict]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for r in records:
                f.write(json_line(r))
                self.done.add(r["id"])
            f.flush()


__all__ = ["AnnotationWriter", "annotate", "read_annotations", "span_records"]
