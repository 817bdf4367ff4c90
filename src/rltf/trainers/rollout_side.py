"""The trainer's side of generation: how many tokens its rollouts make (which backend ``auto``
picks, how large vLLM's KV cache is), the backend holding the current weights, and the importance
weights of tokens another engine sampled."""
from __future__ import annotations

import time

import torch

from rltf.algorithms import importance_weights
from rltf.models.backend import GenerationBackend, render_chat
from rltf.rollout import RolloutBatch


class RolloutSide:
    """Mixin for :class:`~rltf.trainers.base.Trainer`: uses its ``config``, ``task``, ``method``,
    ``dist``, ``tokenizer``, ``backend``, ``model`` and the weight versions."""

    def expected_tokens(self) -> int:
        """Tokens this process's rollouts generate at most (``backend: auto`` weighs vLLM's start against it)."""
        c = self.config
        new = c.max_new_tokens or self.task.max_new_tokens
        prompts = c.prompts_per_step // self.dist.world_size  # this process's share
        steps = c.max_steps * prompts * c.group_size * new * self.method.turns
        return min(steps, c.max_generated_tokens // self.dist.world_size) if c.max_generated_tokens else steps

    def rollout_tokens(self) -> int:
        """Tokens one rollout of this process holds at once (the vLLM KV cache's default size): every
        sequence of its share of a step, each as long as a sample prompt of the task plus, for a
        revision, the answer and a critique, plus its own answer."""
        c = self.config
        new = c.max_new_tokens or self.task.max_new_tokens
        problem = self.task.problems("train", 1, seed=c.seed)[0]
        prompt = len(render_chat(self.tokenizer, self.task.messages(problem)))
        per_sequence = prompt + new + (2 * new + 128 if self.method.turns > 1 else 0)
        return c.prompts_per_step // self.dist.world_size * c.group_size * per_sequence

    def rollout_backend(self) -> GenerationBackend:
        """The generation backend, holding the policy's current weights: a backend with its own copy
        (vLLM) gets the trainer's weights when an optimizer step has changed them since the last sync."""
        if self.synced_version != self.weights_version:
            t0 = time.perf_counter()
            self.backend.sync_weights(self.model)
            self.synced_version = self.weights_version
            self.sync_seconds = time.perf_counter() - t0
        return self.backend

    def sampler_correction(self, logp: torch.Tensor,
                           batch: RolloutBatch) -> tuple[torch.Tensor | None, dict[str, float]]:
        """Importance weights for tokens sampled by another engine than the trained model (vLLM):
        (weights [B, T] or None, mismatch statistics). None for the HF backend, which samples from
        the trained model itself; with ``importance_sampling: off`` the mismatch is still measured."""
        c = self.config
        if self.backend.name == "hf" or batch.sampler_logprobs is None:
            return None, {}
        weights, stats = importance_weights(logp, batch.sampler_logprobs, batch.completion_mask,
                                            c.importance_sampling, c.importance_sampling_cap)
        return (None if c.importance_sampling == "off" else weights), {f"is_{k}": v for k, v in stats.items()}
