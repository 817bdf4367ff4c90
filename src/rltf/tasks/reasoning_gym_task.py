"""Any reasoning-gym dataset as a Task, e.g. ``rg:leg_counting?min_animals=2``."""
from __future__ import annotations

import re

from typing import Any, Iterator

from rltf.errors import ConfigError
from rltf.tasks.base import Problem, Score, Task
from rltf.tasks.boxed import last_boxed

_CHUNK = 512  # problems generated per reasoning-gym dataset object
CRITIC_BY_DATASET = {"chain_sum": "arithmetic", "basic_arithmetic": "arithmetic", "shortest_path": "shortest_path",
                     "binary_matrix": "binary_matrix", "knights_knaves": "knights_knaves"}


def _plain(value: Any) -> Any:
    """numpy scalars and tuples from reasoning-gym metadata -> JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


class ReasoningGymTask(Task):
    source = "reasoning-gym"

    def __init__(self, dataset: str, few_shot: int = 0, name: str | None = None, **params: Any):
        # reasoning_gym takes ~1.2 s to import (measured): only runs that build such a task pay it.
        from reasoning_gym.factory import DATASETS

        if dataset not in DATASETS:
            raise ConfigError(f"unknown reasoning-gym dataset {dataset!r}; see `rltf tasks --all`")
        super().__init__(few_shot=few_shot, **params)
        self.dataset = dataset
        self.critic = CRITIC_BY_DATASET.get(dataset)
        self.name = name or f"rg:{dataset}"
        self._probe = self._make(seed=0, size=1)

    def _make(self, seed: int, size: int):
        import reasoning_gym  # see __init__: imported on use

        try:
            return reasoning_gym.create_dataset(self.dataset, seed=seed, size=size, **self.params)
        except (TypeError, ValueError, AssertionError) as err:
            raise ConfigError(f"bad parameters for reasoning-gym {self.dataset!r}: {err}") from err

    def iter_problems(self, seed: int) -> Iterator[Problem]:
        # reasoning-gym seeds item i of a dataset with (seed + i), so consecutive chunks get seeds
        # _CHUNK apart: their items never share an RNG stream.
        chunk = 0
        while True:
            ds = self._make(seed=seed * 1_000_003 + chunk * _CHUNK, size=_CHUNK)
            for i in range(len(ds)):
                entry = ds[i]
                yield Problem(
                    id=f"{self.name}/s{seed}c{chunk}i{i}",
                    question=entry["question"],
                    answer=str(entry["answer"]),
                    metadata=_plain(entry.get("metadata", {})),
                )
            chunk += 1

    def grade(self, problem: Problem, completion: str) -> Score:
        extracted = last_boxed(completion)
        if extracted is None:
            return Score(self.format_penalty, False, False, "no \\boxed{} answer found")
        entry = {"question": problem.question, "answer": problem.answer, "metadata": problem.metadata}
        try:
            value = float(self._probe.score_answer(extracted, entry))
        except Exception as err:  # a grader crash on odd input is a wrong answer, not a crash
            return Score(0.0, False, True, f"grader error: {type(err).__name__}", extracted)
        correct = value >= 1.0
        return Score(1.0 if correct else 0.0, correct, True, "correct" if correct else "wrong answer", extracted)


class ArithmeticTask(ReasoningGymTask):
    """reasoning-gym ``basic_arithmetic`` or ``chain_sum`` (+ and - only) with worked few-shot
    solutions: left-to-right running sums."""

    max_new_tokens = 64

    def __init__(self, dataset: str = "basic_arithmetic", few_shot: int = 0, name: str | None = None, **params: Any):
        super().__init__(dataset, few_shot=few_shot, name=name, **params)

    def worked_solution(self, problem: Problem) -> str:
        expression = problem.metadata.get("expression", "")
        tokens = expression.replace("-", " - ").replace("+", " + ").split()
        try:
            total, steps = int(tokens[0]), []
            for op, num in zip(tokens[1::2], tokens[2::2]):
                new = total + int(num) if op == "+" else total - int(num)
                steps.append(f"{total} {op} {num} = {new}")
                total = new
        except (ValueError, IndexError):
            return super().worked_solution(problem)
        return ". ".join(steps) + f".\n\\boxed{{{problem.answer}}}"

    def revise(self, problem: Problem, draft: str) -> str | None:
        """The draft with every wrong step's result recomputed and the right final answer in its
        last \\boxed{} (what the critic points at: the wrong step, or the wrong digits); the rest of
        its wording kept. None when the draft has no \\boxed{} to correct, or when its recomputed
        steps do not end at the answer (it worked on other numbers): then the worked solution."""
        last = None
        for last in re.finditer(r"\\boxed\{([^{}]*)\}", draft):
            pass
        if last is None:
            return None

        def fix(m: re.Match) -> str:
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            return f"{m.group(1)} {op} {m.group(3)} = {a + b if op == '+' else a - b}"

        step = r"(-?\d+)\s*([+\-])\s*(\d+)\s*=\s*(-?\d+)"
        head = re.sub(step, fix, draft[:last.start()])
        steps = re.findall(step, head)
        if not steps or steps[-1][3] != problem.answer.strip():  # its working does not reach the answer:
            return None  # fixing the digits would teach a box that does not follow from the steps
        revised = head + "\\boxed{" + problem.answer.strip() + "}" + draft[last.end():]
        return revised if self.grade(problem, revised).correct else None
