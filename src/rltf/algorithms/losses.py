"""Losses: policy gradient with token aggregation modes and PPO clipping, RLTF-SD, RLTF-FM.

Shapes: B sequences x T completion positions. ``mask`` [B, T] is True on the tokens that carry a
loss (answer tokens for RL and SD, critique tokens for FM). Per-sequence advantages are [B] and
are broadcast over tokens; per-token advantages are [B, T].
"""
from __future__ import annotations

import torch

AGGREGATIONS = ("sum", "token-mean", "seq-mean-token-mean")
SD_MODES = ("awr", "clipped_is", "rejection")


def gather_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[label] per position. logits: [B, T, V]; labels: [B, T] -> [B, T] (fp32)."""
    logits = logits.float()
    return logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "sum") -> torch.Tensor:
    """Reduce a [B, T] per-token loss to a scalar.

    ``sum``: sum over each sequence's tokens, mean over sequences (METHODS: summed over tokens).
    ``token-mean``: mean over all valid tokens of the batch. ``seq-mean-token-mean``: mean over
    each sequence's tokens, then over sequences. Sequences without valid tokens count as 0.
    """
    m = mask.to(per_token.dtype)
    b = max(per_token.shape[0], 1)
    if mode == "sum":
        return (per_token * m).sum() / b
    if mode == "token-mean":
        return (per_token * m).sum() / m.sum().clamp(min=1.0)
    if mode == "seq-mean-token-mean":
        return ((per_token * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)).sum() / b
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")


def zero_advantage_skip_is_exact(aggregation: str, kl_coef: float = 0.0) -> bool:
    """Whether leaving out the sequences whose advantage is exactly 0 leaves the loss and its gradient unchanged.

    Their policy-gradient (and SD) term is 0 in every mode, but under ``token-mean`` their tokens
    count in the denominator, and with ``kl_coef > 0`` they still carry the KL term's gradient. So
    the skip is exact only for ``sum`` and ``seq-mean-token-mean`` (normalised by episodes, which
    the trainer counts before skipping) without a KL term.
    """
    return aggregation != "token-mean" and not kl_coef


def _per_token(adv: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return adv.unsqueeze(-1).expand_as(like) if adv.dim() == 1 else adv


def policy_gradient_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                         old_logp: torch.Tensor | None = None, clip_eps: float | None = None,
                         aggregation: str = "sum", ref_logp: torch.Tensor | None = None,
                         kl_coef: float | torch.Tensor = 0.0,
                         is_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """-E[w min(rho A, clip(rho, 1-eps, 1+eps) A)] (+ kl_coef * KL to a reference).

    ``kl_coef``: one coefficient, or one per sequence ([B], e.g. SCoRe's anchor on first turns only).

    logp, old_logp, ref_logp, is_weights: [B, T]; advantages: [B] or [B, T]; mask: [B, T] bool.
    ``is_weights``: the sampler correction w (:func:`rltf.algorithms.importance.importance_weights`,
    no gradient) when the tokens were sampled by another engine; None means w = 1.
    Without ``old_logp`` the sampler is the current policy (fully on-policy): rho = exp(logp -
    logp.detach()) = 1, whose gradient is the REINFORCE gradient A * grad logp. The KL uses the
    k3 estimator exp(ref - logp) - (ref - logp) - 1 >= 0. Returns (loss, stats).
    """
    adv = _per_token(advantages, logp).to(logp.dtype)
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)
    surrogate = ratio * adv
    if clip_eps is not None:
        surrogate = torch.minimum(surrogate, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    per_token = -surrogate if is_weights is None else -surrogate * is_weights.detach().to(surrogate.dtype)
    stats: dict[str, float] = {}
    coef = kl_coef.to(logp.dtype).reshape(-1, 1) if torch.is_tensor(kl_coef) else kl_coef
    if ref_logp is not None and (bool((coef != 0).any()) if torch.is_tensor(coef) else coef):
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + coef * kl
        stats["kl"] = float(aggregate(kl.detach(), mask, "token-mean"))
    if clip_eps is not None:
        clipped = ((ratio - 1).abs() > clip_eps) & mask
        stats["clip_fraction"] = float(clipped.sum() / mask.sum().clamp(min=1))
    return aggregate(per_token, mask, aggregation), stats


def sd_loss(logp_x0: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, mode: str = "awr",
            logp_x1: torch.Tensor | None = None, clip: tuple[float, float] = (0.8, 1.2),
            aggregation: str = "sum") -> torch.Tensor:
    """RLTF-SD: train pi(.|x0) on revisions y1.

    logp_x0: [B, T] log pi(y1_t | x0, y1_<t) (with grad); advantages: [B] (r1 - b0); mask: [B, T]
    (the y1 tokens kept by :func:`sd_token_mask`).
    ``awr`` (the method): -A * log pi(y1 | x0), no importance weight.
    ``clipped_is`` (ablation): each token weighted by sg(clip(pi(y1_t|x0) / pi(y1_t|x1), lo, hi)),
    needs ``logp_x1`` [B, T] from the sampler.
    ``rejection`` (ablation): SFT on correct revisions, i.e. weight 1 where A > 0 else 0.
    """
    adv = _per_token(advantages, logp_x0).to(logp_x0.dtype)
    if mode == "awr":
        weight = adv
    elif mode == "clipped_is":
        if logp_x1 is None:
            raise ValueError("clipped_is needs logp_x1, the sampler's log-probs of y1 given x1")
        ratio = torch.exp(logp_x0.detach() - logp_x1).clamp(*clip)
        weight = ratio * adv
    elif mode == "rejection":
        weight = (adv > 0).to(logp_x0.dtype)
    else:
        raise ValueError(f"SD mode must be awr, clipped_is or rejection, got {mode!r}")
    return aggregate(-weight * logp_x0, mask, aggregation)


def fm_loss(logp: torch.Tensor, mask: torch.Tensor, aggregation: str = "sum") -> torch.Tensor:
    """RLTF-FM: negative log-likelihood of the critique tokens, -sum_t log pi(c_t | f_FM(x0, y0), c_<t).

    logp: [B, T] log-probs of the critique tokens; mask: [B, T] True on critique tokens only.
    """
    return aggregate(-logp, mask, aggregation)
