"""Programmatic critics: they know the ground truth, say what is wrong and where, never the answer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rltf.feedback.base import Critique, FeedbackProvider
from rltf.feedback.critics.arithmetic import critique_arithmetic
from rltf.feedback.critics.code import critique_code
from rltf.feedback.critics.constraints import critique_constraints
from rltf.feedback.critics.common import GENERIC_WRONG, MISSING_BOX, boxed_span, finish
from rltf.feedback.critics.summary import critique_fact_summary
from rltf.feedback.critics.puzzles import critique_binary_matrix, critique_knights_knaves, critique_shortest_path


@dataclass(frozen=True)
class Critic:
    """A programmatic critic: ``fn(task, problem, answer, score) -> Critique``. ``also_correct``:
    it critiques correct answers too (span critics label what is right), not only wrong ones."""

    fn: Callable[..., Critique]
    also_correct: bool = False


def _problem_only(fn: Callable[..., Critique]) -> Callable[..., Critique]:
    return lambda task, problem, answer, score: fn(problem, answer, score)


def critique_generic(problem, answer: str, score) -> Critique:
    """Any verifiable task: a missing or wrong final answer, without its value."""
    if score.extracted is None:
        return finish(MISSING_BOX, [], problem.answer)
    return finish(GENERIC_WRONG, boxed_span(answer), problem.answer)


CRITICS: dict[str | None, Critic] = {
    None: Critic(_problem_only(critique_generic)),
    "arithmetic": Critic(_problem_only(critique_arithmetic)),
    "shortest_path": Critic(_problem_only(critique_shortest_path)),
    "binary_matrix": Critic(_problem_only(critique_binary_matrix)),
    "knights_knaves": Critic(_problem_only(critique_knights_knaves)),
    "code": Critic(critique_code),
    "fact_summary": Critic(critique_fact_summary, also_correct=True),
    "constraints": Critic(critique_constraints, also_correct=True),
}


def register_critic(name: str, fn: Callable[..., Critique], also_correct: bool = False) -> None:
    """Make ``fn(task, problem, answer, score)`` the critic of tasks whose ``critic`` is ``name``."""
    CRITICS[name] = Critic(fn, also_correct)


class ProgrammaticCritic(FeedbackProvider):
    """The critic the task declares (``task.critic``), or the generic one."""

    name = "critic"

    def critique(self, task, problem, answer: str, score) -> Critique:
        self.stats.count(None)
        critic = CRITICS.get(task.critic, CRITICS[None])
        if score.correct and not critic.also_correct:
            return Critique("Your previous attempt was correct.", boxed_span(answer, "positive"), source="critic")
        return critic.fn(task, problem, answer, score)
