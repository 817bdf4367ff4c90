"""Advantages and returns for the RLTF methods (METHODS §1). Pure functions on tensors.

Shapes: G prompts (groups) x N samples per prompt. A boolean ``mask`` [G, N] says which episodes
reached the turn in question; entries outside the mask get advantage 0.
"""
from __future__ import annotations

import torch


def masked_group_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [G, N] over the True entries of ``mask`` [G, N], per group -> [G, 1].
    A group with no True entry has mean 0 (no division by zero). Computed in float64, so a group of
    equal rewards has a mean exactly equal to them (advantage exactly 0)."""
    v = values.double()
    m = mask.double()
    count = m.sum(dim=1, keepdim=True)
    return ((v * m).sum(dim=1, keepdim=True) / count.clamp(min=1.0)).to(values.dtype)


def group_centered_advantages(rewards: torch.Tensor, mask: torch.Tensor | None = None,
                              std_normalize: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """A = r - mean_group(r) over the episodes in ``mask``; optionally divided by the group's std
    (population std over the masked entries, plus ``eps``), as GRPO users expect.

    rewards: [G, N] float; mask: [G, N] bool (default all True). Returns [G, N], 0 outside the mask.
    """
    if mask is None:
        mask = torch.ones_like(rewards, dtype=torch.bool)
    mean = masked_group_mean(rewards, mask)
    adv = (rewards.double() - mean.double()).to(rewards.dtype)
    if std_normalize:
        var = masked_group_mean((rewards - mean) ** 2, mask)
        adv = adv / (var.sqrt() + eps)
    return torch.where(mask, adv, torch.zeros_like(adv))


def multiturn_returns(r0: torch.Tensor, r1: torch.Tensor, reached: torch.Tensor, gamma: float = 0.1):
    """Per-turn returns G0 = r0 + gamma * r1 (G0 = r0 where the episode ended early), G1 = r1.

    r0, r1: [...] float (r1 is ignored where ``reached`` is False); reached: [...] bool, True when
    the episode has a second turn. Returns (G0, G1) with the input shape; G1 is 0 where not reached.
    """
    r1 = torch.where(reached, r1, torch.zeros_like(r1))
    return r0 + gamma * r1, r1


def sd_advantages(r0: torch.Tensor, r1: torch.Tensor, reached: torch.Tensor, baseline: str = "first") -> torch.Tensor:
    """RLTF-SD advantage of each revision y1_i used as a target for the single-turn policy.

    ``baseline="first"`` (the method): A_i = r1_i - b0 with b0 = mean_j r0_j over ALL N first-turn
    rewards of the group. ``"second"`` (ablation): b = mean of r1 over the episodes that reached
    turn 2. r0, r1: [G, N]; reached: [G, N] bool. Returns [G, N], 0 where not reached.
    """
    if baseline == "first":
        b = r0.mean(dim=1, keepdim=True)
    elif baseline == "second":
        b = masked_group_mean(r1, reached)
    else:
        raise ValueError(f"baseline must be 'first' or 'second', got {baseline!r}")
    adv = r1 - b
    return torch.where(reached, adv, torch.zeros_like(adv))


def sd_token_mask(logp_x0: torch.Tensor, mask: torch.Tensor, threshold: float = -5.0):
    """Keep the tokens of y1 the single-turn policy could plausibly produce.

    logp_x0: [B, T] log pi(y1_t | x0, y1_<t); mask: [B, T] bool (valid y1 tokens).
    Returns (keep [B, T] bool = mask & logp_x0 >= threshold, masked_fraction: float tensor =
    share of valid tokens dropped).
    """
    keep = mask & (logp_x0.detach() >= threshold)
    valid = mask.sum()
    dropped = (mask & ~keep).sum()
    fraction = dropped.to(torch.float32) / valid.clamp(min=1).to(torch.float32)
    return keep, fraction
