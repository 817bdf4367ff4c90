"""The policy's forward pass over a :class:`~rltf.rollout.RolloutBatch`: logits (and hidden states)
at the completion positions, and the log-probs of the completion tokens.

The shared prompt prefix is encoded once and its KV cache expanded to the batch (gradients flow
through it); only the last ``T + 1`` positions go through the LM head (``logits_to_keep``).
"""
from __future__ import annotations

import torch

from rltf.algorithms import gather_logprobs
from rltf.rollout import RolloutBatch
from rltf.rollout.batch import NO_SHARED_PREFIX


def completion_forward(model, batch: RolloutBatch, autocast_bf16: bool = False, hidden: bool = False,
                       shared_prefix: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits predicting each completion token -> ([B, T, V], and with ``hidden`` the last layer's
    hidden states at the same positions [B, T, H], the input of a value head). ``shared_prefix``
    False: one model call per batch (sharded training needs the same calls on every process)."""
    inputs = batch.model_inputs() if shared_prefix else batch.model_inputs(min_prefix=NO_SHARED_PREFIX)
    T = inputs.completion_len
    with torch.autocast(device_type=inputs.input_ids.device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
        cache = None
        if inputs.prefix_ids is not None:
            cache = model(input_ids=inputs.prefix_ids, use_cache=True).past_key_values
            cache.batch_repeat_interleave(inputs.input_ids.shape[0])
        out = model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, position_ids=inputs.position_ids,
                    past_key_values=cache, use_cache=cache is not None, logits_to_keep=T + 1,
                    output_hidden_states=hidden)
    logits = out.logits[:, :-1]  # position i predicts token i + 1
    states = out.hidden_states[-1][:, -(T + 1):-1] if hidden else None
    return logits, states


def completion_logprobs(model, batch: RolloutBatch, autocast_bf16: bool = False,
                        shared_prefix: bool = True) -> torch.Tensor:
    """log pi(completion_t | prompt, completion_<t) for every completion position -> [B, T] fp32."""
    logits, _ = completion_forward(model, batch, autocast_bf16, shared_prefix=shared_prefix)
    return gather_logprobs(logits, batch.completion_ids)
