"""The generation backend interface: chat conversations in, sampled continuations out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

Messages = list[dict[str, str]]

BACKENDS = ("auto", "hf", "vllm")  # the choices of `backend` (rltf.models.engines builds them)
# Engine start on the 2-core CPU machine: ~6-10 s (eager) + the model load; at the measured rates
# (HF ~50 tokens/s, vLLM ~220 at temperature 1) vLLM has paid for its start after ~500 tokens.
# `auto` asks for ~8x that, so short jobs (tests, a quick look) keep the HF backend.
AUTO_MIN_TOKENS = 4096


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
    """Implementations: :class:`rltf.models.hf_backend.HFBackend` (transformers) and
    :class:`rltf.models.vllm_backend.VLLMBackend` (vLLM, ``pip install 'rltf[vllm]'``)."""

    name = "base"

    def generate(self, conversations: Sequence[Messages], params: SamplingParams, seed: int = 0,
                 keys: Sequence[int] | None = None) -> list[Generation]:
        """One continuation per conversation (the assistant's next turn), reproducible under ``seed``.

        Each prompt is sampled under its own seed ``request_seed(seed, key)``; ``keys`` (default:
        the prompts' positions) name the prompts, so a prompt's sample does not depend on which
        other prompts share the call (a rank's shard samples what the whole batch would)."""
        return self.generate_ids([self.chat_prompt_ids(c) for c in conversations], params, seed, keys)

    @abstractmethod
    def generate_ids(self, prompts: Sequence[list[int]], params: SamplingParams, seed: int = 0,
                     keys: Sequence[int] | None = None) -> list[Generation]:
        """One continuation per token-id prompt (a raw prompt, or a chat rendered by :meth:`chat_prompt_ids`);
        ``seed`` and ``keys`` as in :meth:`generate`."""

    @abstractmethod
    def chat_prompt_ids(self, conversation: Messages) -> list[int]:
        """Token ids of the conversation as the model sees it, ending with the assistant header."""

    def sync_weights(self, model) -> None:
        """Make the next generations use ``model``'s current weights. A backend that generates with
        the trained model itself (HF) has nothing to do; one with its own copy (vLLM) copies them in."""

    def sleep(self) -> None:
        """The trainer is about to step: a backend with memory of its own may release it (vLLM on CUDA)."""

    def close(self) -> None:
        """Free what the backend holds besides the model (an engine, its cache)."""


def render_chat(tokenizer, conversation: Messages) -> list[int]:
    """Token ids of ``conversation`` under the tokenizer's chat template, ending with the assistant header."""
    out = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)


def make_generation(tokenizer, prompt: list[int], ids: list[int], logprobs: list[float], params: SamplingParams,
                    alternatives: list[list[tuple[int, float]]] | None = None) -> Generation:
    """One backend-independent :class:`Generation` from the raw sampled ``ids`` (and their log-probs):
    cut after the first end-of-turn token (kept, ``finish_reason`` "stop") and after the first stop
    string (the tokens that cover it, the string included), then decode. Every backend ends here, so
    the two backends' outputs are cut and decoded alike."""
    n, reason = len(ids), "length"
    eos = tokenizer.eos_token_id
    if eos in ids:
        n, reason = ids.index(eos) + 1, "stop"
    text = tokenizer.decode(ids[:n], skip_special_tokens=True)
    if params.stop:
        cut = min((text.find(s) + len(s) for s in params.stop if s in text), default=-1)
        if cut >= 0:
            reason = "stop"
            n = min(n, tokens_covering(tokenizer, ids[:n], cut))
            text = tokenizer.decode(ids[:n], skip_special_tokens=True)
    return Generation(text, list(ids[:n]), list(logprobs[:n]), list(prompt), reason, (alternatives or [])[:n])


def tokens_covering(tokenizer, ids: list[int], chars: int) -> int:
    """Smallest number of tokens whose decoded text has at least ``chars`` characters."""
    for k in range(1, len(ids) + 1):
        if len(tokenizer.decode(ids[:k], skip_special_tokens=True)) >= chars:
            return k
    return len(ids)


def request_seed(seed: int, key: int) -> int:
    """The sampling seed of the prompt named ``key`` in a call under ``seed`` (distinct per prompt, < 2**62)."""
    return (seed * 1_000_003 + key * 7_919 + 17) % (1 << 62)


def prompt_keys(n: int, keys: Sequence[int] | None) -> list[int]:
    """``keys`` checked against ``n`` prompts, or the positions 0..n-1."""
    if keys is None:
        return list(range(n))
    keys = [int(k) for k in keys]
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} prompts")
    return keys
