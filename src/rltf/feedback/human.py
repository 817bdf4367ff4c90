"""People's feedback as a provider: stored critiques and spans served by (prompt, answer).

Records come from ``rltf label-studio import`` (or ``rltf annotate``), read by
:func:`rltf.feedback.records.read_annotations`. An answer is looked up by the task's question text
and the answer text (white space at the ends ignored). Where several people annotated the same
answer, the first record in the file is served (``annotator`` picks one person's). An answer with
no stored feedback is never given an invented critique: it gets a correctness-only stand-in marked
``fallback="no_human_feedback"`` and is counted, so RLTF-FM leaves it out (as it does any failed
critique) and Text2Grad gives it no reward.
"""
from __future__ import annotations

from pathlib import Path

from rltf.errors import ConfigError, DataError
from rltf.feedback.base import Critique, FeedbackProvider, correctness_text
from rltf.feedback.records import read_annotations

MISSING = "no_human_feedback"


def answer_key(prompt: str, answer: str) -> tuple[str, str]:
    return prompt.strip(), answer.strip()


class HumanFeedback(FeedbackProvider):
    name = "human"

    def __init__(self, records: list[dict], annotator: str | None = None, source: str = "human"):
        super().__init__()
        self.store: dict[tuple[str, str], dict] = {}
        self.source = source
        for r in records:
            if annotator is None or r.get("annotator") == annotator:
                self.store.setdefault(answer_key(r["prompt"], r["answer"]), r)
        if not self.store:
            who = f" by {annotator!r}" if annotator else ""
            raise DataError(f"{source}: no human feedback records{who}")

    @classmethod
    def from_file(cls, path: str | Path | None, annotator: str | None = None) -> "HumanFeedback":
        if not path:
            raise ConfigError("feedback=human needs the annotation records: human_feedback=FILE.jsonl "
                              "(written by `rltf label-studio import`)")
        return cls(read_annotations(path), annotator, source=f"human:{path}")

    def lookup(self, prompt: str, answer: str) -> dict | None:
        return self.store.get(answer_key(prompt, answer))

    def critique(self, task, problem, answer: str, score) -> Critique:
        record = self.lookup(task.format_question(problem), answer)
        if record is None:
            self.stats.count(MISSING)
            return Critique(correctness_text(bool(score.correct)), [], source=self.source, fallback=MISSING)
        self.stats.count(None)
        return Critique(record["critique"], list(record["spans"]),
                        source=f"human:{record.get('annotator', 'unknown')}")
