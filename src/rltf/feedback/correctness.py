"""Correctness-only feedback: "Your previous attempt was correct / incorrect." (METHODS §1 baseline)."""
from __future__ import annotations

from rltf.feedback.base import Critique, FeedbackProvider, correctness_text


class CorrectnessFeedback(FeedbackProvider):
    name = "correctness"

    def critique(self, task, problem, answer, score) -> Critique:
        self.stats.count(None)
        return Critique(correctness_text(score.correct), [], source="correctness")
