"""Training sequences (prompt ids + completion ids + weights) and their log-probs under a model.

A batch is laid out as ``[shared prefix | pad ... rest of prompt | completion ... pad]``: the
token prefix that all prompts share (the few-shot examples) is encoded once and its KV cache
expanded to the batch (gradients flow through it), prompts are left-padded and completions
right-padded, so every completion starts at the same column. Position ids follow the attention
mask, as in generation, so training log-probs match the sampler's; and only the last ``T + 1``
positions go through the LM head (``logits_to_keep``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rltf.algorithms import gather_logprobs
from rltf.models.hf_backend import shared_prefix_len


@dataclass
class Sequence:
    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float = 0.0  # per-sequence weight (advantage, or 1 for FM targets)
    kind: str = "rl"  # rl | sd | fm
    sampler_logprobs: list[float] | None = None  # log-probs under the sampling distribution, if known
    extra: dict = field(default_factory=dict)


@dataclass
class Collated:
    input_ids: torch.Tensor  # [B, L] (without the shared prefix)
    attention_mask: torch.Tensor  # [B, S + L] (the shared prefix included)
    position_ids: torch.Tensor  # [B, L]
    labels: torch.Tensor  # [B, T] completion tokens (pad where mask is False)
    mask: torch.Tensor  # [B, T] bool, True on completion tokens
    advantages: torch.Tensor  # [B]
    sampler_logprobs: torch.Tensor | None  # [B, T] or None
    completion_len: int  # T
    prefix_ids: torch.Tensor | None = None  # [1, S] the prompts' shared prefix, encoded once


def collate(seqs: list[Sequence], pad_id: int, device: torch.device | str = "cpu", min_prefix: int = 32) -> Collated:
    prompts = [s.prompt_ids for s in seqs]
    shared = shared_prefix_len(prompts, min_prefix)
    p_len = max(len(p) for p in prompts) - shared
    t_len = max(max(len(s.completion_ids) for s in seqs), 1)
    ids, att, labels, mask, old = [], [], [], [], []
    for s in seqs:
        rest = s.prompt_ids[shared:]
        lp, lc = len(rest), len(s.completion_ids)
        ids.append([pad_id] * (p_len - lp) + rest + s.completion_ids + [pad_id] * (t_len - lc))
        att.append([1] * shared + [0] * (p_len - lp) + [1] * (lp + lc) + [0] * (t_len - lc))
        labels.append(s.completion_ids + [pad_id] * (t_len - lc))
        mask.append([True] * lc + [False] * (t_len - lc))
        if s.sampler_logprobs is not None:
            old.append(list(s.sampler_logprobs) + [0.0] * (t_len - lc))
    attention = torch.tensor(att, device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    return Collated(
        input_ids=torch.tensor(ids, device=device), attention_mask=attention, position_ids=positions,
        labels=torch.tensor(labels, device=device), mask=torch.tensor(mask, device=device),
        advantages=torch.tensor([s.advantage for s in seqs], dtype=torch.float32, device=device),
        sampler_logprobs=torch.tensor(old, device=device) if len(old) == len(seqs) else None,
        completion_len=t_len,
        prefix_ids=torch.tensor([prompts[0][:shared]], device=device) if shared else None,
    )


def completion_forward(model, batch: Collated, autocast_bf16: bool = False,
                       hidden: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits predicting each completion token -> ([B, T, V], and with ``hidden`` the last layer's
    hidden states at the same positions [B, T, H], the input of a value head)."""
    device_type = batch.input_ids.device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=autocast_bf16):
        cache = None
        if batch.prefix_ids is not None:
            cache = model(input_ids=batch.prefix_ids, use_cache=True).past_key_values
            cache.batch_repeat_interleave(batch.input_ids.shape[0])
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                    past_key_values=cache, use_cache=cache is not None, logits_to_keep=batch.completion_len + 1,
                    output_hidden_states=hidden)
    logits = out.logits[:, :-1]  # position i predicts token i + 1
    states = out.hidden_states[-1][:, -(batch.completion_len + 1):-1] if hidden else None
    return logits, states


def completion_logprobs(model, batch: Collated, autocast_bf16: bool = False) -> torch.Tensor:
    """log pi(completion_t | prompt, completion_<t) for every completion position -> [B, T] fp32."""
    logits, _ = completion_forward(model, batch, autocast_bf16)
    return gather_logprobs(logits, batch.labels)
