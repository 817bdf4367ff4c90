"""Critique-GRPO (METHODS §3.2): refinements written after a critique join the GRPO group.

One step: n = group_size - k first answers per prompt; the answers ``refine_when`` picks get a
critique and a refinement (the §1 revision prompt); per prompt, k refinements are chosen (correct
ones first, then in sampling order) and trained as answers to the ORIGINAL question. Advantages
are centred on the mean reward of the n answers and the chosen refinements together; first
answers get the on-policy GRPO gradient (the ``rl`` term, coefficient 1/n), refinement tokens the
shaping f(p) = p / (p + gamma) of their current probability (the ``refine`` term, coefficient
1/k): the paper's J. The loss is divided by the number of prompts.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rltf.algorithms import zero_advantage_skip_is_exact
from rltf.algorithms.refinement import REFINE_WHEN, critique_grpo_loss, mixed_group_advantages
from rltf.engine.config_fields import arg
from rltf.engine.parts import Collected, LossTerm, Method
from rltf.errors import ConfigError
from rltf.methods.common import EpisodeOutcome, RLTFFamilyConfig, outcome_metrics, policy_gradient_term
from rltf.methods.registry import register_method
from rltf.rollout import BatchRows

CRITIQUE_GRPO_PAPER = ("Zhang et al., Critique-GRPO: Advancing LLM Reasoning with Natural Language and Numerical "
                       "Feedback, 2025 (arXiv 2506.03106).")


@dataclass
class CritiqueGRPOConfig(RLTFFamilyConfig):
    """Critique-GRPO (METHODS §3.2): critique-guided refinements join the group of first answers."""

    method: str = arg("critique-grpo", "training method (set by the command)")
    group_size: int = arg(8, "group size N = first answers n + refinements k per prompt (the paper: 7 + 1)", ge=2)
    refinements: int = arg(1, "refinements k per prompt that join the group (the paper: 1; n = group_size - k)", ge=1)
    refine_when: str = arg("all_wrong", "which first answers get a critique and a refinement: all_wrong (only prompts "
                                        "whose n answers all failed: the paper), wrong_only (every wrong answer), "
                                        "always (every answer: the official code)", choices=REFINE_WHEN)
    shaping_gamma: float = arg(0.1, "gamma of the refinement tokens' shaping f(p) = p / (p + gamma)", gt=0)
    clip_eps: float | None = arg(None, "PPO-style clip of both weights (None: no clipping, the authors' run script)",
                                 gt=0)

    def check(self):
        if self.refinements >= self.group_size:
            raise ConfigError(f"refinements ({self.refinements}) must be smaller than group_size ({self.group_size}): "
                              "the group is n first answers + k refinements")


def choose_refinements(episodes, k: int) -> list:
    """Up to ``k`` of a prompt's episodes that have a refinement: correct refinements first, then the
    others, each in sampling order (the official code: first correct, else first)."""
    revised = [e for e in episodes if len(e.turns) > 1]
    return ([e for e in revised if e.turns[1].correct] + [e for e in revised if not e.turns[1].correct])[:k]


def revision_selector(rule: str, n: int):
    """``select`` for :func:`run_episodes`: which first answers get a critique (episodes are grouped
    by prompt, n consecutive ones each)."""
    def select(episodes):
        if rule == "always":
            return [True] * len(episodes)
        wrong = [not e.turns[0].correct for e in episodes]
        if rule == "wrong_only":
            return wrong
        return [all(wrong[g * n:(g + 1) * n]) for g in range(len(episodes) // n) for _ in range(n)]
    return select


def first_answers(config) -> int:
    """n: first answers per prompt (the group minus its k refinements)."""
    return config.group_size - config.refinements


def collect(run, problems, seed: int) -> Collected:
    c = run.config
    n, k = first_answers(c), c.refinements
    rollout = run.roll_out(problems, seed, n, 2, select=revision_selector(c.refine_when, n), revision=c.revision_prompt)
    episodes, lo = rollout.episodes, rollout.first
    groups = [episodes[g * n:(g + 1) * n] for g in range(len(rollout.problems))]
    chosen = [choose_refinements(group, k) for group in groups]
    r0 = torch.tensor([[e.turns[0].reward for e in group] for group in groups]).view(len(groups), n)
    r1 = torch.tensor([[e.turns[1].reward for e in ch] + [0.0] * (k - len(ch)) for ch in chosen]).view(-1, k)
    has = torch.tensor([[True] * len(ch) + [False] * (k - len(ch)) for ch in chosen]).view(-1, k)
    a0, a1 = mixed_group_advantages(r0, r1, has, std_normalize=c.std_normalize)
    rows = BatchRows()
    for g, group in enumerate(groups):
        for i, e in enumerate(group):
            first = e.turns[0]
            rows.add("rl", first.prompt_ids, first.token_ids, turn=0, group=lo + g, advantage=a0[g, i],
                     sampler_logprobs=first.logprobs)
        for j, e in enumerate(chosen[g]):  # trained against the original question
            rows.add("refine", e.turns[0].prompt_ids, e.turns[1].token_ids, turn=1, group=lo + g, advantage=a1[g, j])
    outcomes = run.dist.gather([EpisodeOutcome.of(e) for e in episodes])
    picked = run.dist.gather([e.turns[1].correct for ch in chosen for e in ch])
    n_prompts = len(outcomes) // n
    metrics = {**outcome_metrics(outcomes), "time/generate": rollout.generate_seconds,
               "critique/failed": run.feedback_failures(rollout),
               "refine/revised": float(sum(o.revised for o in outcomes)),
               "refine/prompts_with_refinement": run.dist.sum(float(sum(bool(ch) for ch in chosen))) / n_prompts}
    if picked:
        metrics["refine/chosen_correct"] = sum(picked) / len(picked)
    return Collected(rows.batch(run.tokenizer.pad_token_id), n_prompts, metrics, int(metrics["tokens/generated"]))


def refine_term_loss(run, batch):
    """Refinement tokens, trained against the original question with the shaping f(p) = p / (p + gamma)."""
    c = run.config
    return critique_grpo_loss(run.logprobs(batch), batch.advantages, batch.completion_mask,
                              torch.ones(len(batch), dtype=torch.bool), gamma=c.shaping_gamma, clip_eps=c.clip_eps,
                              aggregation=c.loss_aggregation)


def _skip(c) -> bool:
    return zero_advantage_skip_is_exact(c.loss_aggregation, float(c.kl_coef))


register_method(Method(
    "critique-grpo", CritiqueGRPOConfig, CRITIQUE_GRPO_PAPER, collect,
    {"rl": policy_gradient_term(coefficient=lambda c, step: 1.0 / first_answers(c)),
     "refine": LossTerm(refine_term_loss, coefficient=lambda c, step: 1.0 / c.refinements, skip_zero_advantage=_skip)},
    turns=2, rollouts_per_step=lambda c: c.gradient_accumulation_steps))
