"""The two-turn episode of METHODS §1 (answer -> critique -> revision) and K-round inference.

A correct first answer ends its episode; a wrong one gets a critique, and the revision prompt is a
NEW user message built from the question, the previous answer and the critique. Both turns are
scored against the original task.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from rltf.feedback.base import Critique, FeedbackProvider
from rltf.feedback.prompts import (CHAT_REVISION_TURN, PLAIN_REVISION_TEMPLATE, REVISION_PROMPTS,
                                   REVISION_TEMPLATE)
from rltf.models.backend import Generation, GenerationBackend, SamplingParams
from rltf.tasks.base import Problem, Score, Task


@dataclass
class Turn:
    messages: list[dict[str, str]]
    text: str
    token_ids: list[int]
    logprobs: list[float]
    prompt_ids: list[int]
    finish_reason: str
    score: Score

    @property
    def reward(self) -> float:
        return self.score.reward

    @property
    def correct(self) -> bool:
        return self.score.correct

    def to_dict(self) -> dict:
        return {"messages": self.messages, "text": self.text, "token_ids": self.token_ids, "logprobs": self.logprobs,
                "prompt_ids": self.prompt_ids, "finish_reason": self.finish_reason, "score": self.score.to_dict()}


@dataclass
class Episode:
    problem_id: str
    sample: int  # index within the prompt's group
    turns: list[Turn] = field(default_factory=list)
    critiques: list[Critique] = field(default_factory=list)  # critique i sits between turn i and turn i+1
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rewards(self) -> list[float]:
        return [t.reward for t in self.turns]

    def to_dict(self) -> dict:
        return {"problem_id": self.problem_id, "sample": self.sample, "rewards": self.rewards,
                "turns": [t.to_dict() for t in self.turns], "critiques": [c.to_dict() for c in self.critiques],
                "timings": self.timings}


def revision_prompt(task: Task, problem: Problem, answer: str, critique: str, kind: str = "paper") -> str:
    """The revision request as one new user message (``paper``: METHODS §1's prompt; ``plain``)."""
    template = {"paper": REVISION_TEMPLATE, "plain": PLAIN_REVISION_TEMPLATE}[kind]
    return template.format(question=task.format_question(problem), answer=answer.strip(), critique=critique)


def revision_messages(task: Task, problem: Problem, previous: list[dict[str, str]], answer: str, critique: str,
                      kind: str = "paper") -> list[dict[str, str]]:
    """The conversation of the next answer: ``paper`` / ``plain`` ask in a NEW user message built
    from the question, the answer and the critique (the model does not see its own turn); ``chat``
    continues the conversation: the answer as the assistant's turn, the critique as the user's next."""
    if kind not in REVISION_PROMPTS:
        raise ValueError(f"revision prompt must be one of {REVISION_PROMPTS}, got {kind!r}")
    if kind == "chat":
        return [*previous, {"role": "assistant", "content": answer.strip()},
                {"role": "user", "content": CHAT_REVISION_TURN.format(critique=critique.strip())}]
    return task.messages(problem, revision_prompt(task, problem, answer, critique, kind))


def stored_revision_messages(question: str, answer: str, critique: str, kind: str = "paper") -> list[dict[str, str]]:
    """:func:`revision_messages` for a stored record (question text, answer, critique), without a
    task: the revision request of ``kind`` after the bare question (no worked examples)."""
    if kind not in REVISION_PROMPTS:
        raise ValueError(f"revision prompt must be one of {REVISION_PROMPTS}, got {kind!r}")
    if kind == "chat":
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer.strip()},
                {"role": "user", "content": CHAT_REVISION_TURN.format(critique=critique.strip())}]
    template = {"paper": REVISION_TEMPLATE, "plain": PLAIN_REVISION_TEMPLATE}[kind]
    return [{"role": "user", "content": template.format(question=question, answer=answer.strip(), critique=critique)}]


def _turn(task: Task, problem: Problem, messages, gen: Generation) -> Turn:
    score = task.score(problem, gen.text)
    return Turn(messages, gen.text, gen.token_ids, gen.logprobs, gen.prompt_ids, gen.finish_reason, score)


def run_episodes(task: Task, problems: Sequence[Problem], backend: GenerationBackend, feedback: FeedbackProvider,
                 params: SamplingParams, n_samples: int = 1, rounds: int = 2, seed: int = 0,
                 stop_when_correct: bool = True, first_key: int = 0,
                 select: Callable[[Sequence[Episode]], Sequence[bool]] | None = None,
                 revision: str = "paper", first_answers: Mapping[str, str] | None = None) -> list[Episode]:
    """``n_samples`` episodes per problem, each with up to ``rounds`` answers (2 = the RLTF episode).

    Episode i's answers are sampled under the key ``first_key + i`` (:meth:`GenerationBackend.generate`):
    a process given a shard of a step's problems passes the index of its first episode in the whole
    step, and samples exactly the episodes one process would.

    With ``stop_when_correct`` (the RLTF rule) a correct answer ends its episode; otherwise every
    episode is revised each round (self-critique, where the model cannot know it was right).
    ``select(episodes)`` -> one bool per episode (all of them, in order) replaces that rule: which
    episodes still active get a critique and another answer (e.g. Critique-GRPO's "only prompts
    whose answers all failed"). ``revision``: how the next answer is asked for
    (:func:`revision_messages`: paper, plain or chat). ``first_answers`` (problem id -> text) replaces
    the first round's sampling with given answers (e.g. another model's drafts, to measure how well
    this one revises them); they count no generated tokens.
    """
    episodes = [Episode(p.id, k) for p in problems for k in range(n_samples)]
    owners = [p for p in problems for _ in range(n_samples)]
    active = list(range(len(episodes)))
    messages = {i: task.messages(owners[i]) for i in active}
    for r in range(rounds):
        t0 = time.perf_counter()
        if r == 0 and first_answers is not None:
            missing = sorted({str(owners[i].id) for i in active} - set(first_answers))
            if missing:
                raise ValueError(f"no first answer given for problem(s) {missing[:3]}")
            gens = [Generation(first_answers[str(owners[i].id)], [], [], finish_reason="stop") for i in active]
        else:
            gens = backend.generate([messages[i] for i in active], params, seed=seed * 1009 + r * 7919,
                                    keys=[first_key + i for i in active])
        t1 = time.perf_counter()
        for i, gen in zip(active, gens):
            episodes[i].turns.append(_turn(task, owners[i], messages[i], gen))
            episodes[i].timings[f"generate_{r}"] = t1 - t0
        t2 = time.perf_counter()
        if r == rounds - 1:
            break
        if select is not None:
            chosen = list(select(episodes))
            need = [i for i in active if chosen[i]]
        else:
            need = [i for i in active if not (stop_when_correct and episodes[i].turns[-1].correct)]
        if not need:
            break
        items = [(task, owners[i], episodes[i].turns[-1].text, episodes[i].turns[-1].score) for i in need]
        critiques: list[Critique] = feedback.critique_many(items)
        t3 = time.perf_counter()
        for i, c in zip(need, critiques):
            episodes[i].critiques.append(c)
            episodes[i].timings[f"score_{r}"] = t2 - t1
            episodes[i].timings[f"critique_{r}"] = t3 - t2
            messages[i] = revision_messages(task, owners[i], messages[i], episodes[i].turns[-1].text, c.text, revision)
        active = need
    return episodes


def write_episodes(episodes: Sequence[Episode], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for e in episodes:
            f.write(json.dumps(e.to_dict()) + "\n")
