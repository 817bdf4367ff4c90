"""Revisions as training signal beyond RLTF-SD: Critique-GRPO's mixed groups (METHODS §3.2) and
SCoRe's revision reward (§3.3). Pure functions on tensors.

Shapes: G prompts x n first answers, k refinements per prompt; B sequences x T completion
positions for the losses.
"""
from __future__ import annotations

import torch

from rltf.algorithms.advantages import masked_group_mean
from rltf.algorithms.losses import _per_token, aggregate

REFINE_WHEN = ("all_wrong", "wrong_only", "always")


def mixed_group_advantages(r0: torch.Tensor, r1: torch.Tensor, has_refinement: torch.Tensor,
                           std_normalize: bool = False, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Critique-GRPO's advantages: A = R - mean(R over the group's n answers AND its refinements).

    r0: [G, n] rewards of the first answers; r1: [G, k] rewards of the refinements, judged as
    answers to the original question; has_refinement: [G, k] bool (a prompt may get fewer than k).
    ``std_normalize``: divide by the mixed group's population std (+ eps) — the official code does,
    the paper does not. Returns (A0 [G, n], A1 [G, k], 0 where there is no refinement).
    """
    rewards = torch.cat([r0, r1], dim=1)
    mask = torch.cat([torch.ones_like(r0, dtype=torch.bool), has_refinement], dim=1)
    mean = masked_group_mean(rewards, mask)
    adv = rewards - mean
    if std_normalize:
        adv = adv / (masked_group_mean((rewards - mean) ** 2, mask).sqrt() + eps)
    adv = torch.where(mask, adv, torch.zeros_like(adv))
    return adv[:, :r0.shape[1]], adv[:, r0.shape[1]:]


def refinement_shaping(logp: torch.Tensor, gamma: float = 0.1) -> torch.Tensor:
    """f(p) = p / (p + gamma) of the CURRENT probability p = exp(logp) (with gradient): [B, T] -> [B, T].
    Its gradient gamma p / (p + gamma)^2 * grad log p peaks at p = gamma, favouring unlikely tokens."""
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    p = logp.exp()
    return p / (p + gamma)


def critique_grpo_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, refinement: torch.Tensor,
                       old_logp: torch.Tensor | None = None, gamma: float = 0.1, clip_eps: float | None = None,
                       aggregation: str = "sum") -> tuple[torch.Tensor, dict[str, float]]:
    """-[min(w A, clip(w, 1-eps, 1+eps) A)] per token: w = pi/pi_old for the first answers, w =
    f(pi(y1_t | x0, y1_<t)) (:func:`refinement_shaping`) for the refinements (rows where
    ``refinement`` [B] is True), both trained against the ORIGINAL question x0.

    logp, old_logp: [B, T]; advantages: [B] or [B, T]; mask: [B, T]. Without ``old_logp`` the first
    answers are on-policy (w = 1 with the REINFORCE gradient). ``clip_eps`` None: no clipping (the
    authors' run script). The paper's weights 1/n and 1/k are the coefficients of the
    method's two loss terms, not part of the advantages. Returns (loss, stats).
    """
    adv = _per_token(advantages, logp).to(logp.dtype)
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)
    shaped = refinement_shaping(logp, gamma)
    is_ref = refinement.to(torch.bool).unsqueeze(-1).expand_as(logp)
    w = torch.where(is_ref, shaped, ratio)
    surrogate = w * adv
    if clip_eps is not None:
        surrogate = torch.minimum(surrogate, torch.clamp(w, 1 - clip_eps, 1 + clip_eps) * adv)
    ref_tokens = mask & is_ref
    stats = {"refinement_token_fraction": float(ref_tokens.sum() / mask.sum().clamp(min=1))}
    if ref_tokens.any():
        stats["refinement_shaping_mean"] = float(shaped.detach()[ref_tokens].mean())
    return aggregate(-surrogate, mask, aggregation), stats


def revision_bonus_returns(r0: torch.Tensor, r1: torch.Tensor, reached: torch.Tensor, alpha: float = 10.0,
                           first_turn_return: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """SCoRe's per-turn returns (gamma 0: each turn its own reward), Stage II by default:
    G0 = r0, G1 = r1 + alpha (r1 - r0) — a revision that only repeats its first answer gains nothing,
    one that fixes it gains (1 + alpha), one that breaks it loses (1 + alpha).
    ``first_turn_return=False`` is Stage I: G0 = 0 (the first turn is only held by its KL anchor).

    r0, r1: [...] rewards; reached: [...] bool (episodes with a second turn). Returns (G0, G1), G1 = 0
    where not reached.
    """
    g1 = torch.where(reached, r1 + alpha * (r1 - r0), torch.zeros_like(r1))
    g0 = r0 if first_turn_return else torch.zeros_like(r0)
    return g0, g1
