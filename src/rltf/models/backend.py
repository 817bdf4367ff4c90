"""The generation backend interface: chat conversations in, sampled continuations out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0  # 0 means greedy decoding
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # generation of a sequence ends once its text contains one of these
    top_logprobs: int = 0  # also return the k most likely tokens at each position (rltf serve's logprobs)


@dataclass
class Generation:
    text: str
    token_ids: list[int]  # generated tokens, the end-of-turn token included when it was produced
    logprobs: list[float]  # log pi(token | prefix) under the raw (temperature-1) logits, one per token
    prompt_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" (end token or stop string) or "length"
    top_logprobs: list[list[tuple[int, float]]] = field(default_factory=list)  # per token: (id, logprob), best first

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


class GenerationBackend(ABC):
    """Implementations: :class:`rltf.models.hf_backend.HFBackend` (transformers)."""

    def generate(self, conversations: Sequence[Messages], params: SamplingParams, seed: int = 0) -> list[Generation]:
        """One continuation per conversation (the assistant's next turn), reproducible under ``seed``."""
        return self.generate_ids([self.chat_prompt_ids(c) for c in conversations], params, seed)

    @abstractmethod
    def generate_ids(self, prompts: Sequence[list[int]], params: SamplingParams, seed: int = 0) -> list[Generation]:
        """One continuation per token-id prompt (a raw prompt, or a chat rendered by :meth:`chat_prompt_ids`)."""

    @abstractmethod
    def chat_prompt_ids(self, conversation: Messages) -> list[int]:
        """Token ids of the conversation as the model sees it, ending with the assistant header."""
