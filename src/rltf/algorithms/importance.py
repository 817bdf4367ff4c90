"""Importance-sampling correction for a sampler that is not the trained model (vLLM).

The rollout engine and the trainer compute the same policy with different kernels, so the tokens
were drawn from pi_sampler, close to but not equal to the trainer's pi_theta. On-policy losses
assume pi_theta; each token's (or sequence's) loss is re-weighted by the ratio
w = pi_theta / pi_sampler, bounded so that a rare large ratio cannot dominate a step (truncated IS,
Yao et al. 2025; TRL's ``vllm_importance_sampling_correction``):

- ``token_truncate``: w_t = min(exp(logp_t - sampler_t), cap)
- ``token_mask``: w_t = exp(logp_t - sampler_t), or 0 where it exceeds ``cap``
- ``sequence_truncate`` / ``sequence_mask``: the same on the sequence ratio exp(sum_t (logp_t -
  sampler_t)), the weight of every token of the sequence
- ``off``: w = 1

Weights carry no gradient (the trainer's log-probs enter detached).
"""
from __future__ import annotations

import torch

IS_MODES = ("off", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def importance_weights(logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, mode: str = "token_truncate",
                       cap: float = 3.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token weights [B, T] (0 off the mask) and the mismatch statistics.

    logp: [B, T] the trainer's log-probs of the sampled tokens (detached here);
    sampler_logp: [B, T] the sampler's log-probs of the same tokens; mask: [B, T] bool.
    Stats over the masked tokens: ``mismatch_kl`` (k3 estimate of KL(sampler || trainer)),
    ``ratio_mean``, ``ratio_max``, ``capped_fraction`` (tokens, or sequences in sequence modes,
    whose ratio exceeded ``cap``).
    """
    if mode not in IS_MODES:
        raise ValueError(f"importance sampling mode must be one of {', '.join(IS_MODES)}, got {mode!r}")
    if cap <= 0:
        raise ValueError(f"importance sampling cap must be > 0, got {cap}")
    mask = mask.bool()
    maskf = mask.to(logp.dtype)
    log_ratio = (logp.detach() - sampler_logp.to(logp.dtype)) * maskf
    ratio = torch.exp(log_ratio)
    n_tokens = maskf.sum().clamp(min=1)
    delta = -log_ratio  # log(pi_sampler / pi_theta) on the masked tokens, 0 elsewhere
    stats = {"mismatch_kl": float(((torch.exp(-delta) - 1 + delta) * maskf).sum() / n_tokens),
             "ratio_mean": float((ratio * maskf).sum() / n_tokens),
             "ratio_max": float(ratio.masked_fill(~mask, 0).max()) if mask.any() else 1.0}
    if mode == "off":
        stats["capped_fraction"] = 0.0
        return maskf, stats
    if mode.startswith("sequence"):
        seq = torch.exp(log_ratio.sum(dim=1, keepdim=True))  # [B, 1]
        over = seq > cap
        rows = mask.any(dim=1, keepdim=True)
        stats["capped_fraction"] = float((over & rows).sum() / rows.sum().clamp(min=1))
        weight = seq.clamp(max=cap) if mode == "sequence_truncate" else seq.masked_fill(over, 0.0)
        return weight.expand_as(logp) * maskf, stats
    over = (ratio > cap) & mask
    stats["capped_fraction"] = float(over.sum() / n_tokens)
    weight = ratio.clamp(max=cap) if mode == "token_truncate" else ratio.masked_fill(over, 0.0)
    return weight * maskf, stats
