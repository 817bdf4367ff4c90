"""An LLM judge that writes dual feedback (METHODS §2.1): a critique and the spans it refers to.

Works with any :class:`rltf.feedback.client.ChatClient`: an OpenAI-compatible endpoint or a local
model. For code tasks the judge sees the test log and answers with ``wrong_code`` /
``improvement_code``. A failed request or an unreadable reply is counted by reason and the sample
gets ``Critique(fallback=reason)``: callers must not use it as a critique (annotation skips it,
PPO gives it no reward).
"""
from __future__ import annotations

from typing import Sequence

from rltf.feedback.base import Critique, FeedbackProvider, correctness_text, leaks_answer
from rltf.feedback.cache import ReplyCache
from rltf.feedback.client import ChatClient, JudgeError
from rltf.feedback.prompts import CODE_SPAN_JUDGE_SYSTEM, CODE_SPAN_JUDGE_USER, SPAN_JUDGE_SYSTEM, SPAN_JUDGE_USER
from rltf.feedback.span_parse import FeedbackParseError, parse_dual_feedback
from rltf.feedback.validate import has_bad_characters

MAX_CRITIQUE_CHARS = 2000


class SpanJudge(FeedbackProvider):
    def __init__(self, client: ChatClient, cache: ReplyCache | str | None = None):
        super().__init__()
        self.client, self.name = client, client.name
        self.cache = ReplyCache(cache) if isinstance(cache, str) else cache

    def messages(self, task, problem, answer: str) -> list[dict[str, str]]:
        if task.runs_tests:
            report = task.test_report(problem, answer)
            log = "no code block found" if report is None else (report.log or report.error or report.status)
            user = CODE_SPAN_JUDGE_USER.format(question=task.format_question(problem), answer=answer.strip(),
                                               test_log=log[-2000:])
            return [{"role": "system", "content": CODE_SPAN_JUDGE_SYSTEM}, {"role": "user", "content": user}]
        user = SPAN_JUDGE_USER.format(question=task.format_question(problem), reference=problem.answer or "",
                                      answer=answer.strip())
        return [{"role": "system", "content": SPAN_JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def critique(self, task, problem, answer: str, score) -> Critique:
        return self.critique_many([(task, problem, answer, score)])[0]

    def critique_many(self, items: Sequence) -> list[Critique]:
        convs = [self.messages(t, p, a) for t, p, a, _ in items]
        keys = [ReplyCache.key(self.client.name, c) for c in convs] if self.cache else []
        replies: list = [self.cache.get(k) for k in keys] if self.cache else [None] * len(convs)
        todo = [i for i, r in enumerate(replies) if r is None]
        for i, reply in zip(todo, self.client.complete_many([convs[i] for i in todo])):
            replies[i] = reply
        out = []
        for i, ((task, problem, answer, score), reply) in enumerate(zip(items, replies)):
            critique, reason = self._read(task, problem, reply)
            self.stats.count(reason)
            if critique is None:
                out.append(Critique(correctness_text(score.correct), [], source=self.name, fallback=reason))
                continue
            if self.cache and i in todo:
                self.cache.put(keys[i], reply)
            out.append(critique)
        return out

    def _read(self, task, problem, reply) -> tuple[Critique | None, str | None]:
        if isinstance(reply, JudgeError):
            return None, reply.reason
        if has_bad_characters(reply):
            return None, "bad_characters"
        try:
            parsed = parse_dual_feedback(reply)
        except FeedbackParseError as err:
            return None, err.reason
        if len(parsed.critique) > MAX_CRITIQUE_CHARS:
            return None, "too_long"
        if not task.critique_may_state_answer and problem.answer and leaks_answer(
                parsed.critique, problem.answer, problem.question):
            return None, "leaks_answer"
        spans = parsed.spans
        return Critique(parsed.critique, spans, source=self.name), None
