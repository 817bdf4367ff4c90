"""SDPO-style self-distillation (METHODS §3.1): the policy conditioned on feedback is the teacher of
the policy without it, on the student's own samples. Pure functions on tensors.

Shapes: B sequences x T completion positions x V vocabulary. ``student_logits`` [B, T, V] are the
policy's logits for y0 given x0 (with gradient); ``teacher_logits`` [B, T, V] the teacher's for the
same tokens y0 given the feedback context x_T (no gradient); ``tokens`` [B, T] the sampled ids y0;
``mask`` [B, T] True on the answer tokens that carry a loss.

Per-token losses l_t (before aggregation), with p_t the student's and q_t the teacher's next-token
distribution:

- ``full_logits``: the generalised divergence D_alpha(p_t, q_t) over the whole vocabulary
  (:func:`divergence`): alpha = 1 reverse KL(p||q) (the paper's Eq. 1), alpha = 0 forward KL(q||p),
  otherwise (1-a) KL(p||m) + a KL(q||m) with m = (1-a) p + a q (a = 0.5: Jensen-Shannon).
- ``topk_logits``: the same on the student's top-K token ids, both distributions renormalised over
  them, or with ``add_tail`` a (K+1)-th bucket holding the rest of each distribution's mass.
- ``sampled_token``: l_t = sg(log p_t(y_t) - log q_t(y_t)) * log p_t(y_t), whose gradient is the
  sampled-token estimate of the reverse KL's (alpha must be 1): today's RLTF-SD signal, with the
  teacher scoring the student's tokens instead of generating its own.

Then, with ``old_logp`` (the sampler's log-probs of y_t), l_t *= min(exp(sg(log p_t(y_t) - old)),
``is_clip``): the truncated importance weight of the student's own off-policy samples.
"""
from __future__ import annotations

import math

import torch

from rltf.algorithms.losses import aggregate

SDPO_MODES = ("sampled_token", "full_logits", "topk_logits")
TEACHERS = ("live", "initial", "ema")


def _kl(logp_a: torch.Tensor, logp_b: torch.Tensor) -> torch.Tensor:
    """KL(a || b) over the last axis from log-probabilities: [..., V] -> [...]."""
    return (logp_a.exp() * (logp_a - logp_b)).sum(-1)


def divergence(student_logp: torch.Tensor, teacher_logp: torch.Tensor, alpha: float) -> torch.Tensor:
    """D_alpha(p, q) per position from log-distributions [..., V] -> [...].

    alpha = 1: KL(p || q); alpha = 0: KL(q || p); else (1-a) KL(p || m) + a KL(q || m), m = (1-a) p + a q.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 1.0:
        return _kl(student_logp, teacher_logp)
    if alpha == 0.0:
        return _kl(teacher_logp, student_logp)
    log_m = torch.logsumexp(torch.stack([student_logp + math.log(1 - alpha), teacher_logp + math.log(alpha)]), dim=0)
    return (1 - alpha) * _kl(student_logp, log_m) + alpha * _kl(teacher_logp, log_m)


def topk_log_distributions(student_logits: torch.Tensor, teacher_logits: torch.Tensor, k: int,
                           add_tail: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(student, teacher) log-distributions over the student's top-``k`` ids at each position:
    [B, T, V] x 2 -> [B, T, K] x 2 renormalised over the K ids, or [B, T, K+1] with ``add_tail``
    (the K ids' true probabilities plus one bucket for the remaining mass 1 - sum_K)."""
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    k = min(k, student_logits.shape[-1])
    ids = student_logits.detach().topk(k, dim=-1).indices
    s_logp = torch.log_softmax(student_logits.float(), dim=-1).gather(-1, ids)
    t_logp = torch.log_softmax(teacher_logits.float(), dim=-1).gather(-1, ids)
    if not add_tail:
        return torch.log_softmax(s_logp, dim=-1), torch.log_softmax(t_logp, dim=-1)

    def with_tail(logp: torch.Tensor) -> torch.Tensor:
        mass = torch.logsumexp(logp, dim=-1, keepdim=True).clamp(max=0.0)
        tail = torch.log((-torch.expm1(mass)).clamp(min=1e-12))  # log(1 - sum_K p), floored at 1e-12
        return torch.cat([logp, tail], dim=-1)

    return with_tail(s_logp), with_tail(t_logp)


def sdpo_token_losses(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tokens: torch.Tensor,
                      mode: str = "sampled_token", alpha: float = 1.0, topk: int = 100, add_tail: bool = False,
                      old_logp: torch.Tensor | None = None, is_clip: float | None = 2.0) -> torch.Tensor:
    """The per-token SDPO loss l_t [B, T] (see the module docstring); teacher without gradient."""
    teacher_logits = teacher_logits.detach()
    s_logp_all = torch.log_softmax(student_logits.float(), dim=-1)
    s_tok = s_logp_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if mode == "sampled_token":
        if alpha != 1.0:
            raise ValueError("sampled_token distillation estimates the reverse KL: alpha must be 1")
        t_tok = torch.log_softmax(teacher_logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        per_token = (s_tok.detach() - t_tok) * s_tok
    elif mode == "full_logits":
        per_token = divergence(s_logp_all, torch.log_softmax(teacher_logits.float(), dim=-1), alpha)
    elif mode == "topk_logits":
        s_k, t_k = topk_log_distributions(student_logits, teacher_logits, topk, add_tail)
        per_token = divergence(s_k, t_k, alpha)
    else:
        raise ValueError(f"SDPO mode must be one of {SDPO_MODES}, got {mode!r}")
    if old_logp is not None and is_clip:
        per_token = per_token * torch.exp(s_tok.detach() - old_logp).clamp(max=is_clip)
    return per_token


def sdpo_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
              mode: str = "sampled_token", alpha: float = 1.0, topk: int = 100, add_tail: bool = False,
              old_logp: torch.Tensor | None = None, is_clip: float | None = 2.0,
              aggregation: str = "seq-mean-token-mean") -> tuple[torch.Tensor, dict[str, float]]:
    """SDPO's distillation loss, aggregated over ``mask`` (default as TRL: mean over each sequence's
    tokens, then over sequences) -> (loss, stats: the mean per-token divergence)."""
    per_token = sdpo_token_losses(student_logits, teacher_logits, tokens, mode, alpha, topk, add_tail, old_logp,
                                  is_clip)
    stats = {"token_loss": float(aggregate(per_token.detach(), mask, "token-mean"))}
    return aggregate(per_token, mask, aggregation), stats


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, rate: float) -> None:
    """theta_T <- (1 - rate) theta_T + rate theta, parameter by parameter (same architecture)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.lerp_(s.detach().to(t.dtype), rate)
