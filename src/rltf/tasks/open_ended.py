"""Open-ended prompts (no verifier): JSONL of {prompt, reference?} and SLF5K-format summarisation.

These tasks are scored by a judge: set ``task.judge`` to a feedback provider with a ``rate`` method
(:class:`rltf.feedback.judge.LLMJudge`), which returns a 0-10 score turned into a reward in [0, 1].
"""
from __future__ import annotations

import hashlib
from typing import Any

from rltf.errors import ConfigError, DataError
from rltf.tasks.base import ListTask, Problem, Score
from rltf.tasks.jsonl import read_records, require

SUMMARY_PROMPT = "Write a concise TL;DR summary (one or two sentences) of this Reddit post.\n\nSUBREDDIT: r/{subreddit}\nTITLE: {title}\nPOST: {post}"


class OpenEndedTask(ListTask):
    instruction = ""
    critique_may_state_answer = True  # the facts are in the prompt: naming them gives nothing away
    scored_by_judge = True
    correct_threshold = 0.7  # a judge rating >= 7/10 counts as "correct" for accuracy figures

    def __init__(self, problems: list[Problem], name: str, source: str, few_shot: int = 0, **params: Any):
        super().__init__(problems, few_shot=few_shot, **params)
        self.name, self.source = name, source
        self.judge = None

    @classmethod
    def from_jsonl(cls, path: str, **params: Any) -> "OpenEndedTask":
        problems = []
        for where, r in read_records(path):
            prompt = require(r, ("prompt", "question", "instruction"), where)
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError(f"{where}: 'prompt' must be a non-empty string")
            pid = str(r.get("id") or hashlib.sha1(prompt.encode()).hexdigest()[:12])
            problems.append(Problem(pid, prompt, str(r.get("reference") or r.get("answer") or ""), {}))
        if not problems:
            raise DataError(f"{path}: no prompts found")
        return cls(problems, f"open:{path}", "file", **params)

    @classmethod
    def from_slf5k(cls, path: str, **params: Any) -> "OpenEndedTask":
        """SLF5K records: post, title, subreddit, ideal_human_summary (the reference)."""
        problems = []
        for where, r in read_records(path):
            post = require(r, ("post",), where)
            prompt = SUMMARY_PROMPT.format(subreddit=r.get("subreddit", ""), title=r.get("title", ""), post=post)
            reference = require(r, ("ideal_human_summary", "summary", "reference"), where)
            pid = str(r.get("id") or hashlib.sha1(post.encode()).hexdigest()[:12])
            problems.append(Problem(pid, prompt, str(reference), {"post": post, "title": r.get("title", "")}))
        if not problems:
            raise DataError(f"{path}: no posts found")
        return cls(problems, f"slf5k:{path}", "SLF5K-format file", **params)

    def worked_solution(self, problem: Problem) -> str:
        return problem.answer

    def grade(self, problem: Problem, completion: str) -> Score:
        if self.judge is None:
            raise ConfigError(f"task {self.name} has no verifier: score it with a judge (--feedback judge)")
        if not completion.strip():
            return Score(self.format_penalty, False, False, "empty answer")
        rating = self.judge.rate(self, problem, completion)
        if rating is None:
            return Score(0.0, False, True, "judge gave no usable rating")
        reward = rating / 10.0
        return Score(reward, reward >= self.correct_threshold, True, f"judge rating {rating:g}/10", None)
