"""Programmatic critics: they know the ground truth, say what is wrong and where, never the answer."""
from __future__ import annotations

from rltf.feedback.base import Critique, FeedbackProvider
from rltf.feedback.critics.arithmetic import critique_arithmetic
from rltf.feedback.critics.code import critique_code
from rltf.feedback.critics.common import GENERIC_WRONG, MISSING_BOX, boxed_span, finish
from rltf.feedback.critics.summary import critique_fact_summary
from rltf.feedback.critics.puzzles import critique_binary_matrix, critique_knights_knaves, critique_shortest_path

_BY_DATASET = {
    "chain_sum": critique_arithmetic,
    "basic_arithmetic": critique_arithmetic,
    "shortest_path": critique_shortest_path,
    "binary_matrix": critique_binary_matrix,
    "knights_knaves": critique_knights_knaves,
}


def critique_generic(problem, answer: str, score) -> Critique:
    """Any verifiable task: a missing or wrong final answer, without its value."""
    if score.extracted is None:
        return finish(MISSING_BOX, [], problem.answer)
    return finish(GENERIC_WRONG, boxed_span(answer), problem.answer)


class ProgrammaticCritic(FeedbackProvider):
    """Picks the critic for the task (by reasoning-gym dataset, code, or the generic one)."""

    name = "critic"

    def critique(self, task, problem, answer: str, score) -> Critique:
        self.stats.count(None)
        if getattr(task, "dataset", None) == "fact_summary":
            return critique_fact_summary(task, problem, answer, score)
        if score.correct:
            return Critique("Your previous attempt was correct.", boxed_span(answer, "positive"), source="critic")
        from rltf.tasks.code_task import CodeTask

        if isinstance(task, CodeTask):
            return critique_code(task, problem, answer, score)
        fn = _BY_DATASET.get(getattr(task, "dataset", None), critique_generic)
        return fn(problem, answer, score)
