"""Math word problems graded by math-verify on the last ``\\boxed{}``.

Reads JSONL with ``problem`` (or ``question``, or ``prompt`` as a string or chat list, as in
DAPO-Math) and ``answer`` (or ``ground_truth``, or ``reward_model.ground_truth``), a local
`datasets` directory, or a parquet file. Without a path, the 55 problems shipped with rltf.
"""
from __future__ import annotations

import hashlib
import threading
from importlib import resources
from typing import Any

from rltf.errors import DataError
from rltf.tasks.base import ListTask, Problem, Score
from rltf.tasks.boxed import last_boxed
from rltf.tasks.jsonl import read_records, require


def _question(record: dict, where: str) -> str:
    value = require(record, ("problem", "question", "prompt"), where)
    if isinstance(value, list):  # chat-format prompt: take the last user message
        users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            raise DataError(f"{where}: prompt is a list without a user message")
        value = users[-1]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: the problem text is empty or not a string")
    return value


def _answer(record: dict, where: str) -> str:
    if isinstance(record.get("reward_model"), dict) and "ground_truth" in record["reward_model"]:
        return str(record["reward_model"]["ground_truth"])
    answer = require(record, ("answer", "ground_truth", "final_answer"), where)
    return str(answer)


def verify_math(gold: str, predicted: str) -> bool:
    """Symbolic equivalence of two answers (math-verify); signal timeouts only in the main thread."""
    from math_verify import parse, verify  # ~0.4 s to import (measured): paid only by math grading

    main = threading.current_thread() is threading.main_thread()
    timeout = 5 if main else None
    gold_parsed = parse(f"${gold}$", parsing_timeout=timeout)
    pred_parsed = parse(f"\\boxed{{{predicted}}}", parsing_timeout=timeout)
    if not gold_parsed or not pred_parsed:
        return gold.strip() == predicted.strip()
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


class MathTask(ListTask):
    source = "file"

    def __init__(self, path: str | None = None, few_shot: int = 0, **params: Any):
        if path is None:
            ref = resources.files("rltf") / "data" / "math_sample.jsonl"
            with resources.as_file(ref) as real:
                problems = self._load(real)
        else:
            problems = self._load(path)
        super().__init__(problems, few_shot=few_shot, **params)
        self.name = "math" if path is None else f"math:{path}"
        self.source = "rltf (shipped sample)" if path is None else "file"
        if not self._problems:
            raise DataError(f"{path}: no problems found")

    @staticmethod
    def _load(path) -> list[Problem]:
        problems = []
        for where, record in read_records(path):
            question = _question(record, where)
            pid = str(record.get("id") or record.get("unique_id") or hashlib.sha1(question.encode()).hexdigest()[:12])
            meta = {k: v for k, v in record.items() if k in ("level", "subject", "type")}
            problems.append(Problem(pid, question, _answer(record, where), meta))
        return problems

    def grade(self, problem: Problem, completion: str) -> Score:
        extracted = last_boxed(completion)
        if extracted is None:
            return Score(self.format_penalty, False, False, "no \\boxed{} answer found")
        correct = verify_math(problem.answer, extracted)
        return Score(1.0 if correct else 0.0, correct, True, "correct" if correct else "wrong answer", extracted)
