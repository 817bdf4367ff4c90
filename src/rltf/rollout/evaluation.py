"""Single-turn accuracy (the test-time metric of every method) and K-round feedback inference."""
from __future__ import annotations

import time
from typing import Any

from tqdm.auto import tqdm

from rltf.feedback.base import FeedbackProvider
from rltf.models.backend import GenerationBackend, SamplingParams
from rltf.rollout.episode import run_episodes
from rltf.stats import wilson_interval
from rltf.tasks.base import Task


def evaluate(task: Task, backend: GenerationBackend, n: int, seed: int = 0, rounds: int = 1,
             feedback: FeedbackProvider | None = None, params: SamplingParams | None = None,
             split: str = "eval", transcripts: int = 3, progress: bool = False, ranks=None,
             revision: str = "paper", drafts: dict[str, str] | None = None,
             keep_first_answers: bool = False) -> dict[str, Any]:
    """Accuracy of the first answer on ``n`` held-out problems, with its 95 % interval.

    ``ranks`` (a :class:`rltf.engine.distributed.Distributed`): each training process answers a
    contiguous share of the problems and the episodes are gathered, so every process returns the
    result of the whole set. Problem i is sampled under key i whatever the split.

    With ``rounds`` K > 1, each wrong answer gets a critique from ``feedback`` and is revised, K-1
    times; ``per_round`` gives the accuracy after each round. Self-critique revises every answer.
    ``revision``: how a revision is asked for (paper, plain or chat; see :func:`run_episodes`).
    ``drafts`` (problem id -> text): the first answers are these instead of the backend's (e.g. the
    initial model's), so the rounds after measure how the backend's model revises them.
    ``keep_first_answers``: the result also has ``first_answers`` (problem id -> text).
    """
    params = params or SamplingParams(max_new_tokens=task.max_new_tokens, temperature=0.0)
    problems = task.problems(split, n, seed=seed)
    if not problems:
        raise ValueError(f"task {task.name} has no problems in split {split!r}")
    if rounds > 1 and feedback is None:
        raise ValueError("rounds > 1 needs a feedback provider")
    start = time.perf_counter()
    episodes = []
    offset, end = ranks.share_bounds(len(problems)) if ranks is not None else (0, len(problems))
    mine = problems[offset:end]
    chunk = max(1, len(mine) // 8) if progress else max(1, len(mine))
    bar = _bar(len(mine), progress)
    for lo in range(0, len(mine), chunk):
        part = mine[lo:lo + chunk]
        episodes += run_episodes(task, part, backend, feedback, params, n_samples=1, rounds=rounds, seed=seed,
                                 stop_when_correct=getattr(feedback, "name", "") != "self", first_key=offset + lo,
                                 revision=revision, first_answers=drafts)
        bar.update(len(part))
    bar.close()
    if ranks is not None and ranks.world_size > 1:
        episodes = ranks.gather(episodes)
    seconds = time.perf_counter() - start
    per_round = []
    for r in range(rounds):
        correct = sum(e.turns[min(r, len(e.turns) - 1)].correct for e in episodes)
        per_round.append(correct / len(episodes))
    first = [e.turns[0] for e in episodes]
    k = sum(t.correct for t in first)
    wrong = [e for e in episodes if not e.turns[0].correct]
    right = [e for e in episodes if e.turns[0].correct and len(e.turns) > 1]  # revised right answers (self)
    tokens = sum(len(t.token_ids) for e in episodes for t in e.turns)
    lo, hi = wilson_interval(k, len(first))
    result = {
        "task": task.name, "split": split, "n": len(first), "seed": seed,
        "accuracy": k / len(first), "ci95": [lo, hi],
        "mean_reward": sum(t.reward for t in first) / len(first),
        "format_rate": sum(t.score.format_ok for t in first) / len(first),
        "rounds": rounds, "per_round_accuracy": per_round,
        # K > 1: wrong first answers fixed by the last revision (i->c), right ones broken (c->i)
        "wrong_first": len(wrong),
        "wrong_ids": sorted(str(e.problem_id) for e in wrong),
        "fix_rate": (sum(e.turns[-1].correct for e in wrong) / len(wrong) if wrong and rounds > 1 else None),
        "fixed_ids": sorted(str(e.problem_id) for e in wrong if rounds > 1 and e.turns[-1].correct),
        # wrong first answers whose last revision hands the first answer back word for word
        "verbatim_ids": sorted(str(e.problem_id) for e in wrong if rounds > 1 and same_words(e.turns[-1].text,
                                                                                               e.turns[0].text)),
        # wrong first answers whose last revision copies the critique's own wording (20+ characters)
        "copied_ids": sorted(str(e.problem_id) for e in wrong if rounds > 1 and e.critiques
                             and copies(e.turns[-1].text, e.critiques[-1].text)),
        "break_rate": (sum(not e.turns[-1].correct for e in right) / len(right) if right else None),
        "tokens_generated": tokens,
        "sampling": {"temperature": params.temperature, "top_p": params.top_p, "max_new_tokens": params.max_new_tokens},
        "transcripts": [_compact(e) for e in episodes[:transcripts]],
        **({"first_answers": {str(e.problem_id): e.turns[0].text for e in episodes}} if keep_first_answers else {}),
        # Wall-clock figures vary run to run; everything else is a function of the seed.
        "timing": {"seconds": seconds, "tokens_per_s": tokens / seconds if seconds else 0.0},
    }
    # each held-out item's first answer: correct or not, its reward and the task's own metrics (e.g. the
    # constraint task's loose score), so that runs can be compared item by item (paired tests)
    items = {str(e.problem_id): {"correct": bool(e.turns[0].correct), "reward": float(e.turns[0].reward)}
             for e in episodes}
    if task.metric_names:  # task-specific metrics (e.g. fact F1), mean over first answers
        by_id = {p.id: p for p in problems}
        values = [task.metrics(by_id[e.problem_id], e.turns[0].text) for e in episodes]
        for e, v in zip(episodes, values):
            items[str(e.problem_id)].update(v)
        result["metrics"] = {k: sum(v[k] for v in values) / len(values) for k in values[0]}
    result["items"] = items
    if feedback is not None:
        stats = feedback.stats.to_dict()
        if ranks is not None and ranks.world_size > 1:
            stats = _summed_stats(stats, ranks)
        result["feedback"] = {"provider": feedback.name, **stats}
    return result


def _summed_stats(stats: dict[str, Any], ranks) -> dict[str, Any]:
    """The feedback counters of every process added up (requested, failed, failures by reason)."""
    parts = ranks.gather_object(stats)
    reasons: dict[str, int] = {}
    for p in parts:
        for k, v in p["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    return {"requested": sum(p["requested"] for p in parts), "failed": sum(p["failed"] for p in parts),
            "reasons": reasons}


def _compact(episode) -> dict[str, Any]:
    return {"problem_id": episode.problem_id,
            "question": episode.turns[0].messages[-1]["content"],
            "answers": [{"text": t.text, "reward": t.reward, "correct": t.correct} for t in episode.turns],
            "critiques": [c.text for c in episode.critiques]}


def _bar(total: int, enabled: bool):
    return tqdm(total=total, desc="eval", unit="prompt", disable=not enabled, leave=False)


def same_words(a: str, b: str) -> bool:
    """The same text, whitespace aside."""
    return a.split() == b.split()


def copies(text: str, source: str, length: int = 20) -> bool:
    """``text`` contains ``length`` or more consecutive characters of ``source`` (whitespace and case
    aside): a revision that writes out the critique instead of following it."""
    a, b = " ".join(text.lower().split()), " ".join(source.lower().split())
    return len(b) >= length and any(b[i:i + length] in a for i in range(len(b) - length + 1))
