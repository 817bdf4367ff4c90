"""Judges that write critiques with a language model: remote (OpenAI-compatible), local, or the
policy itself (self-critique, the RLTF-FM use case).

Every reply is validated (:mod:`rltf.feedback.validate`); a failed request or a rejected reply is
counted by reason and that sample falls back to correctness-only feedback.
"""
from __future__ import annotations

from typing import Any, Sequence

from rltf.feedback.base import Critique, FeedbackProvider, correctness_text
from rltf.feedback.cache import ReplyCache
from rltf.feedback.client import ChatClient, JudgeError, LocalChatClient
from rltf.feedback.prompts import FM_TEMPLATE, JUDGE_SYSTEM, JUDGE_USER, RATE_SYSTEM, RATE_USER
from rltf.feedback.validate import extract_critique, extract_score


class LLMJudge(FeedbackProvider):
    def __init__(self, client: ChatClient, cache: ReplyCache | str | None = None):
        super().__init__()
        self.client, self.name = client, client.name
        self.cache = ReplyCache(cache) if isinstance(cache, str) else cache

    def judge_messages(self, task, problem, answer: str, score) -> list[dict[str, str]]:
        verdict = "correct" if score.correct else f"incorrect ({score.detail})"
        user = JUDGE_USER.format(question=task.format_question(problem), reference=problem.answer or "(none)",
                                 answer=answer.strip(), verdict=verdict)
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def _ask(self, conversations: list) -> list[str | JudgeError]:
        replies: list[Any] = [None] * len(conversations)
        keys = [ReplyCache.key(self.client.name, c) for c in conversations] if self.cache else []
        todo = []
        for i, conv in enumerate(conversations):
            hit = self.cache.get(keys[i]) if self.cache else None
            if hit is not None:
                replies[i] = hit
            else:
                todo.append(i)
        for i, reply in zip(todo, self.client.complete_many([conversations[i] for i in todo])):
            replies[i] = reply
            if self.cache and isinstance(reply, str) and extract_critique(reply)[0] is not None:
                self.cache.put(keys[i], reply)
        return replies

    def critique(self, task, problem, answer: str, score) -> Critique:
        return self.critique_many([(task, problem, answer, score)])[0]

    def critique_many(self, items: Sequence) -> list[Critique]:
        replies = self._ask([self.judge_messages(*item) for item in items])
        out = []
        for (task, problem, answer, score), reply in zip(items, replies):
            if isinstance(reply, JudgeError):
                text, reason = None, reply.reason
            else:
                text, reason = extract_critique(reply, problem.answer, question=problem.question,
                                                correct=score.correct)
            self.stats.count(reason)
            if text is None:
                out.append(Critique(correctness_text(score.correct), [], source=self.name, fallback=reason))
            else:
                out.append(Critique(text, [], source=self.name))
        return out

    def rate(self, task, problem, answer: str) -> float | None:
        """A 0-10 rating for open-ended tasks (None when the judge fails)."""
        user = RATE_USER.format(question=problem.question, reference=problem.answer, answer=answer)
        reply = self._ask([[{"role": "system", "content": RATE_SYSTEM}, {"role": "user", "content": user}]])[0]
        return None if isinstance(reply, JudgeError) else extract_score(reply)


class SelfCritic(FeedbackProvider):
    """The policy critiques its own answer with the FM prompt; it never sees the ground truth."""

    name = "self"

    def __init__(self, backend, max_new_tokens: int = 128):
        super().__init__()

        self.client = LocalChatClient(backend, "self", max_new_tokens=max_new_tokens)

    def critique(self, task, problem, answer: str, score) -> Critique:
        return self.critique_many([(task, problem, answer, score)])[0]

    def critique_many(self, items: Sequence) -> list[Critique]:
        convs = [[{"role": "user", "content": FM_TEMPLATE.format(question=t.format_question(p), answer=a.strip())}]
                 for t, p, a, _ in items]
        out = []
        for reply in self.client.complete_many(convs):
            text = reply.strip() if isinstance(reply, str) else ""
            self.stats.count(None if text else "empty")
            out.append(Critique(text or "Check your previous attempt carefully.", [], source="self",
                                fallback=None if text else "empty"))
        return out
