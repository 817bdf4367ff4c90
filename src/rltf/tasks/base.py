"""The Task interface: problems with ids and hidden ground truth, chat messages, and scoring.

Rewards follow METHODS §1: 1 for a correct answer, 0 for a wrong answer in the asked format, and
``format_penalty`` (-0.1) when the asked format (a final ``\\boxed{}``) is missing.
"""
from __future__ import annotations

import hashlib
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from rltf.errors import ConfigError

SPLITS = ("train", "eval", "all")


@dataclass(frozen=True)
class Problem:
    """One task instance. ``answer`` is the ground truth: critics and judges see it, the policy never does."""

    id: str
    question: str
    answer: str
    metadata: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Score:
    reward: float
    correct: bool
    format_ok: bool
    detail: str = ""
    extracted: str | None = None  # the final answer the grader read, when it found one

    def to_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "correct": self.correct, "format_ok": self.format_ok,
                "detail": self.detail, "extracted": self.extracted}


def split_of(question: str, eval_fraction: float) -> str:
    """Deterministic split by the question's content, so train and eval can never share a prompt."""
    bucket = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big") / 2**64
    return "eval" if bucket < eval_fraction else "train"


class Task(ABC):
    """A verifiable task. Subclasses implement :meth:`iter_problems` and :meth:`grade`.

    Capabilities are declared here, as class attributes, so that critics, judges and the
    evaluation read them instead of guessing from a task's type.
    """

    name: str = "task"
    source: str = ""
    instruction: str = "Put your final answer within \\boxed{}."
    format_penalty: float = -0.1
    eval_fraction: float = 0.1
    max_new_tokens: int = 512  # default generation budget for an answer to this task
    critic: str | None = None  # the programmatic critic (rltf.feedback.critics.CRITICS); None: the generic one
    critique_may_state_answer: bool = False  # True when the answer is in the prompt (summaries): no leak guard
    runs_tests: bool = False  # True for code: test_report() gives the failing test to critics and judges
    scored_by_judge: bool = False  # True when grade() needs ``task.judge`` (open-ended tasks)
    metric_names: tuple[str, ...] = ()  # the keys of metrics(); () when the task has none

    def __init__(self, few_shot: int = 0, **params: Any):
        if isinstance(few_shot, bool) or not isinstance(few_shot, int) or few_shot < 0:
            raise ConfigError(f"few_shot must be a non-negative integer, got {few_shot!r}")
        self.few_shot = few_shot
        self.params = params
        self.reward_functions: list[tuple[Callable[..., float], float]] = []
        self._few_shot_cache: list[tuple[str, str]] | None = None

    # -- problems ---------------------------------------------------------------------------
    @abstractmethod
    def iter_problems(self, seed: int) -> Iterator[Problem]:
        """All problems in a deterministic order for ``seed`` (may be infinite for generators)."""

    def size(self) -> int | None:
        """Number of distinct problems, or None for procedural generators."""
        return None

    def problems(self, split: str = "eval", n: int | None = None, seed: int = 0) -> list[Problem]:
        """The first ``n`` problems of ``split`` (``train``, ``eval`` or ``all``) for ``seed``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if n is None and self.size() is None:
            raise ValueError(f"task {self.name} is procedural: give the number of problems n")
        out: list[Problem] = []
        for problem in self.iter_split(split, seed):
            out.append(problem)
            if n is not None and len(out) >= n:
                break
        return out

    max_misses: int = 20_000  # a generator that yields this many repeats in a row is exhausted

    def iter_split(self, split: str, seed: int) -> Iterator[Problem]:
        """Distinct problems of ``split`` in a deterministic order (few-shot examples excluded).

        A procedural generator with a small space (e.g. sums of three 1-digit numbers) ends once
        ``max_misses`` generated problems in a row were repeats or belonged to the other split.
        """
        seen: set[str] = set()
        shots = {q for q, _ in self.few_shot_examples()}
        misses = 0
        for problem in self.iter_problems(seed):
            if (problem.question in seen or self.format_question(problem) in shots
                    or (split != "all" and split_of(problem.question, self.eval_fraction) != split)):
                misses += 1
                if misses >= self.max_misses:
                    return
                continue
            misses = 0
            seen.add(problem.question)
            yield problem

    # -- prompts ----------------------------------------------------------------------------
    def format_question(self, problem: Problem) -> str:
        return f"{problem.question.rstrip()}\n\n{self.instruction}" if self.instruction else problem.question

    def worked_solution(self, problem: Problem) -> str:
        """A worked answer for few-shot examples; tasks with a natural derivation override it."""
        return f"The answer is \\boxed{{{problem.answer}}}."

    def revise(self, problem: Problem, draft: str) -> str | None:
        """A correct revision of ``draft`` that keeps its wording and changes only what is wrong: the
        smallest edit that follows the critic's critique (the feedback-use warm start trains on it).
        None when the task cannot write one; then the worked solution is the target."""
        return None

    def few_shot_examples(self) -> list[tuple[str, str]]:
        """``few_shot`` (question, worked solution) pairs from the train split, fixed for the task."""
        if self.few_shot <= 0:
            return []
        if self._few_shot_cache is None:
            self._few_shot_cache = []  # guards against recursion through problems()
            picked = []
            for problem in self.iter_problems(seed=987_654):
                if split_of(problem.question, self.eval_fraction) == "train":
                    picked.append((self.format_question(problem), self.worked_solution(problem)))
                if len(picked) >= self.few_shot:
                    break
            self._few_shot_cache = picked
        return self._few_shot_cache

    def messages(self, problem: Problem, user_message: str | None = None) -> list[dict[str, str]]:
        """Chat messages: few-shot examples, then the question (or ``user_message`` in its place,
        e.g. the revision prompt of the second turn, which is a new user message)."""
        msgs: list[dict[str, str]] = []
        for question, solution in self.few_shot_examples():
            msgs += [{"role": "user", "content": question}, {"role": "assistant", "content": solution}]
        msgs.append({"role": "user", "content": user_message or self.format_question(problem)})
        return msgs

    # -- scoring ----------------------------------------------------------------------------
    @abstractmethod
    def grade(self, problem: Problem, completion: str) -> Score:
        """Score a completion against the hidden ground truth of ``problem``."""

    def score(self, problem: Problem, completion: str) -> Score:
        """:meth:`grade`, with the reward replaced by the weighted sum of :attr:`reward_functions` when
        a user gave any (``add2?reward=my.py:brevity``); correctness stays the task's own verdict."""
        score = self.grade(problem, completion)
        if not self.reward_functions:
            return score
        total = 0.0
        for fn, weight in self.reward_functions:
            value = fn(problem.question, completion, reference=problem.answer, correct=score.correct,
                       problem_id=problem.id)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"reward function {getattr(fn, '__name__', fn)!r} returned {value!r} for problem "
                                  f"{problem.id}; a reward must be a finite number")
            total += weight * float(value)
        return replace(score, reward=total)

    def metrics(self, problem: Problem, completion: str) -> dict[str, float]:
        """Task-specific per-answer metrics (keys: :attr:`metric_names`); none by default."""
        return {}

    def describe(self) -> dict[str, Any]:
        size = self.size()
        return {"name": self.name, "source": self.source,
                "params": {**self.params, **({"few_shot": self.few_shot} if self.few_shot else {})},
                "size": "procedural" if size is None else size}


def mean_task_metrics(task: Task, problems, answers) -> dict[str, float]:
    """Mean of the task's per-answer metrics (``task.metrics``); {} for tasks without them."""
    if not task.metric_names or not answers:
        return {}
    values = [task.metrics(p, a) for p, a in zip(problems, answers)]
    return {k: sum(v[k] for v in values) / len(values) for k in values[0]}


class ListTask(Task):
    """A task over a fixed list of problems (files, shipped samples): shuffled per seed."""

    def __init__(self, problems: list[Problem], few_shot: int = 0, **params: Any):
        super().__init__(few_shot=few_shot, **params)
        self._problems = problems

    def size(self) -> int:
        return len(self._problems)

    def iter_problems(self, seed: int) -> Iterator[Problem]:
        order = list(range(len(self._problems)))
        random.Random(seed).shuffle(order)
        for i in order:
            yield self._problems[i]
