"""PPO with a value head over dense per-token rewards (METHODS §2.4): the pieces as pure functions.

Shapes: B sequences x T response positions; ``mask`` [B, T] is True on response tokens (a prefix
of each row: responses are right-padded). Values V[b, t] estimate the return from the state
before token t.
"""
from __future__ import annotations

import math

import torch

from rltf.algorithms.losses import aggregate


def dense_rewards(delta: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None = None, beta: float = 0.0,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """r_t = delta_t * w_t - beta * KL_t on response tokens, 0 elsewhere.

    delta, kl: [B, T]; weights: [T] or [B, T] (the optional length weight) -> [B, T].
    """
    r = delta if weights is None else delta * weights
    if kl is not None and beta:
        r = r - beta * kl
    return r * mask.to(r.dtype)


def last_token_rewards(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The scalar-PPO reward layout: each sequence's score on its last response token, 0 elsewhere.

    scores: [B]; mask: [B, T] -> [B, T].
    """
    out = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
    lengths = mask.sum(dim=1)
    rows = torch.nonzero(lengths > 0).squeeze(-1)
    out[rows, lengths[rows] - 1] = scores[rows]
    return out


def length_weights(length: int, alpha: float = 1.0, l0: float = 48.0) -> torch.Tensor:
    """w_t = 1 / (1 + exp(alpha * (t - L0) - 6)) for t = 0..length-1 -> [length] (about 1 before L0)."""
    t = torch.arange(length, dtype=torch.float32)
    return torch.sigmoid(-(alpha * (t - l0) - 6.0))


def full_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(pi(.|s_t) || pi_ref(.|s_t)) over the whole vocabulary. logits: [B, T, V] -> [B, T] (fp32)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    ref = torch.log_softmax(ref_logits.float(), dim=-1)
    return (logp.exp() * (logp - ref)).sum(dim=-1)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation -> (advantages, returns), both [B, T], 0 off the mask.

    delta_t = r_t + gamma * V_{t+1} - V_t (V after the last response token is 0),
    A_t = delta_t + gamma * lam * A_{t+1}, returns R_t = A_t + V_t.
    """
    m = mask.to(rewards.dtype)
    values = values * m
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_value = values[:, t + 1] * m[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        next_mask = m[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last * next_mask
        adv[:, t] = last * m[:, t]
    return adv, (adv + values) * m


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8,
           mean: torch.Tensor | float | None = None, var: torch.Tensor | float | None = None) -> torch.Tensor:
    """(x - mean) / std over the masked entries of the whole batch (population variance) -> [B, T].
    With ``shift_mean=False`` the mean is added back (scale only). ``mean`` and ``var`` given (e.g.
    over every training process's batch) replace this batch's."""
    m = mask.to(x.dtype)
    n = m.sum().clamp(min=1.0)
    if mean is None:
        mean = (x * m).sum() / n
    if var is None:
        var = (((x - mean) * m) ** 2).sum() / n
    var = torch.as_tensor(var, dtype=x.dtype)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * m


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float | None = 0.2, aggregation: str = "token-mean") -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped value loss 0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2).

    values (with grad), old_values, returns: [B, T]; mask: [B, T] -> (scalar, stats).
    """
    err = (values - returns) ** 2
    if clip is not None:
        # clamp to [V_old - c, V_old + c] leaves an unclipped value bit-exact (V_old + clamp(V - V_old)
        # would not), so the clip fraction counts only the tokens where the clip bites
        clipped = torch.clamp(values, old_values - clip, old_values + clip)
        err_clipped = (clipped - returns) ** 2
        per_token = 0.5 * torch.maximum(err, err_clipped)
        frac = float(((err_clipped > err) & mask).sum() / mask.sum().clamp(min=1))
    else:
        per_token, frac = 0.5 * err, 0.0
    return aggregate(per_token, mask, aggregation), {"value_clip_fraction": frac}


class AdaptiveKLController:
    """Ziegler et al. (2019): beta <- beta * (1 + clip((KL - target) / target, -0.2, 0.2) * n / horizon).
    ``target=None`` keeps beta fixed."""

    def __init__(self, init: float, target: float | None = 6.0, horizon: int = 10_000):
        self.value, self.target, self.horizon = init, target, horizon

    def update(self, kl: float, n_steps: int) -> float:
        if self.target and math.isfinite(kl):
            error = max(-0.2, min(0.2, kl / self.target - 1.0))
            self.value *= 1.0 + error * n_steps / self.horizon
        return self.value
