"""What the group-advantage methods share (GRPO, the RLTF family, SDPO, Critique-GRPO): their config
fields, the per-episode outcome every step logs, and the policy-gradient loss term of their ``rl`` rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from rltf.algorithms import policy_gradient_loss, zero_advantage_skip_is_exact
from rltf.engine.config import TrainConfig
from rltf.engine.config_fields import arg
from rltf.engine.parts import LossTerm


@dataclass
class RLTFFamilyConfig(TrainConfig):
    """Fields of the GRPO/RLTF family (group advantages over N samples per prompt), not of PPO."""

    gradient_accumulation_steps: int = arg(1, "rollout batches accumulated per optimizer step", ge=1)
    std_normalize: bool = arg(False, "divide group-centred advantages by the group's std (GRPO style)")


@dataclass
class EpisodeOutcome:
    """What one episode contributes to a step's metrics (gathered from every process)."""

    reward0: float
    correct0: bool
    revised: bool  # the episode has a second answer
    reward1: float | None
    correct1: bool | None
    tokens: int  # generated over all its answers

    @classmethod
    def of(cls, episode) -> EpisodeOutcome:
        first, second = episode.turns[0], (episode.turns[1] if len(episode.turns) > 1 else None)
        return cls(first.reward, first.correct, second is not None, second.reward if second else None,
                   second.correct if second else None, sum(len(t.token_ids) for t in episode.turns))


def outcome_metrics(outcomes: list[EpisodeOutcome]) -> dict[str, float]:
    """Rewards and accuracy per turn, the share of episodes revised, tokens generated, and how
    revisions moved: wrong -> right among revised wrong answers, right -> wrong among revised right ones."""
    n = len(outcomes)
    revised = [o for o in outcomes if o.revised]
    metrics = {"reward/turn0": sum(o.reward0 for o in outcomes) / n,
               "accuracy/turn0": sum(o.correct0 for o in outcomes) / n,
               "episodes/reached_turn1": len(revised) / n,
               "tokens/generated": float(sum(o.tokens for o in outcomes))}
    if revised:
        metrics["reward/turn1"] = sum(o.reward1 for o in revised) / len(revised)
        metrics["accuracy/turn1"] = sum(o.correct1 for o in revised) / len(revised)
        wrong = [o for o in revised if not o.correct0]
        right = [o for o in revised if o.correct0]
        if wrong:
            metrics["revision/wrong_to_right"] = sum(o.correct1 for o in wrong) / len(wrong)
        if right:
            metrics["revision/right_to_wrong"] = sum(not o.correct1 for o in right) / len(right)
    return metrics


def policy_gradient_term(kl_coefficients: Callable | None = None, skip_zero_advantage: Callable | None = None,
                         coefficient: Callable = lambda config, step: 1.0) -> LossTerm:
    """The ``rl`` rows' loss: the on-policy policy gradient of their advantages (METHODS §1), with the
    sampler's importance correction (vLLM) and, when the coefficient is not 0, a KL term to the
    reference. ``kl_coefficients(config, batch)``: one coefficient, or one per row [B] (SCoRe's
    first-turn anchor); default ``config.kl_coef``. ``coefficient``: the term's weight (SDPO's 1 - w)."""
    kl_of = kl_coefficients or (lambda config, batch: config.kl_coef)

    def loss(run, batch):
        c = run.config
        logp = run.logprobs(batch)
        kl_coef = kl_of(c, batch)
        ref_logp = None
        if bool((kl_coef != 0).any()) if torch.is_tensor(kl_coef) else kl_coef:
            with torch.no_grad(), run.reference_model() as ref_model:
                ref_logp = run.logprobs(batch, model=ref_model)
        weights, is_stats = run.sampler_correction(logp, batch)
        value, stats = policy_gradient_loss(logp, batch.advantages, batch.completion_mask,
                                            aggregation=c.loss_aggregation, ref_logp=ref_logp, kl_coef=kl_coef,
                                            is_weights=weights)
        return value, {**stats, **is_stats}

    skip = skip_zero_advantage or (lambda c: zero_advantage_skip_is_exact(c.loss_aggregation, float(c.kl_coef)))
    return LossTerm(loss, coefficient=coefficient, skip_zero_advantage=skip)
