"""Batched generation with transformers: left padding, KV cache, length-sorted batches, log-probs."""
from __future__ import annotations

from typing import Sequence

import torch

from transformers import LogitsProcessor, LogitsProcessorList

from rltf.models.backend import (Generation, GenerationBackend, Messages, SamplingParams, make_generation, prompt_keys,
                                 render_chat, request_seed)


class HFBackend(GenerationBackend):
    """Generate with ``model.generate`` in batches of ``batch_size`` conversations.

    Conversations are sorted by prompt length before batching (less padding), and results are
    returned in the input order. Each prompt is sampled with its own random generator, seeded
    ``request_seed(seed, key)`` (:class:`KeyedSampler`), so its sample does not depend on the batch
    it shares: a call is reproducible under its seed, and a process sampling a shard of the prompts
    draws what one process sampling all of them would.
    """

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 16, autocast_bf16: bool = False,
                 prefix_cache: bool = True, min_prefix: int = 32):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.autocast_bf16 = autocast_bf16  # bf16 matmuls (AMX on CPU, tensor cores on GPU)
        # Few-shot prompts share a long token prefix: encode it once per batch and reuse its KV cache.
        self.prefix_cache, self.min_prefix = prefix_cache, min_prefix
        self.tokenizer.padding_side = "left"

    def chat_prompt_ids(self, conversation: Messages) -> list[int]:
        return render_chat(self.tokenizer, conversation)

    @torch.inference_mode()
    def generate_ids(self, prompts: Sequence[list[int]], params: SamplingParams, seed: int = 0,
                     keys: Sequence[int] | None = None) -> list[Generation]:
        seeds = [request_seed(seed, k) for k in prompt_keys(len(prompts), keys)]
        prompts = [list(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Generation | None] = [None] * len(prompts)
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo:lo + self.batch_size]
            for i, gen in zip(idx, self._generate_batch([prompts[i] for i in idx], params, [seeds[i] for i in idx])):
                results[i] = gen
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        tok, model = self.tokenizer, self.model
        device = next(model.parameters()).device
        pad = tok.pad_token_id
        shared = shared_prefix_len(prompts, self.min_prefix) if self.prefix_cache else 0
        # Layout [shared prefix | left padding | rest of the prompt]: the attention mask hides the
        # padding and position ids follow the mask, so every row sees its own prompt.
        rests = [p[shared:] for p in prompts]
        width = max(len(r) for r in rests)
        head = prompts[0][:shared]
        input_ids = torch.tensor([head + [pad] * (width - len(r)) + r for r in rests], device=device)
        attention = torch.tensor([[1] * shared + [0] * (width - len(r)) + [1] * len(r) for r in rests], device=device)
        width += shared
        greedy = params.temperature <= 0
        kwargs = dict(
            max_new_tokens=params.max_new_tokens, do_sample=not greedy, pad_token_id=pad,
            eos_token_id=tok.eos_token_id, return_dict_in_generate=True, output_logits=True,
        )
        if not greedy:  # KeyedSampler draws the token; HF's own warpers are off and its draw is one-hot
            kwargs.update(temperature=1.0, top_p=1.0, top_k=0, logits_processor=LogitsProcessorList(
                [KeyedSampler(seeds, params.temperature, params.top_p, device)]))
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            if shared:
                prefix_out = model(input_ids=input_ids[:1, :shared], use_cache=True)
                cache = prefix_out.past_key_values
                cache.batch_repeat_interleave(len(prompts))
                kwargs["past_key_values"] = cache
            out = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new = out.sequences[:, width:]
        logits = torch.stack(out.logits, dim=1).float()  # [B, T, V] raw logits
        all_logp = torch.log_softmax(logits, dim=-1)
        logp = all_logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        top = all_logp.topk(params.top_logprobs, dim=-1) if params.top_logprobs > 0 else None
        gens = []
        for row, prompt in enumerate(prompts):
            ids = new[row].tolist()
            alternatives = None if top is None else [
                list(zip(top.indices[row, t].tolist(), top.values[row, t].tolist())) for t in range(len(ids))]
            gens.append(make_generation(tok, prompt, ids, logp[row].tolist(), params, alternatives))
        return gens


class KeyedSampler(LogitsProcessor):
    """Draws each row's next token under the row's own ``torch.Generator`` (temperature, then top-p
    as transformers' warpers apply them) and returns scores that are 0 on the drawn token and -inf
    elsewhere, so ``generate``'s sampling step picks exactly that token. A row's draws depend only on
    its seed and its own logits, not on the rows beside it."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature  # [B, V]
        if self.top_p < 1.0:  # nucleus: drop the tokens whose ascending cumulative mass is <= 1 - top_p
            sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - self.top_p)
            remove[..., -1:] = False  # keep at least the most likely token
            logits = logits.masked_fill(remove.scatter(1, sorted_idx, remove), float("-inf"))
        probs = logits.softmax(dim=-1)
        picks = torch.cat([torch.multinomial(probs[b], 1, generator=g) for b, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picks.view(-1, 1), 0.0)
        return out


def shared_prefix_len(seqs: list[list[int]], min_prefix: int) -> int:
    """Length of the token prefix all ``seqs`` share, leaving at least one token of each sequence
    after it; 0 for a single sequence or when the shared part is shorter than ``min_prefix``."""
    if len(seqs) < 2:
        return 0
    limit = min(len(s) for s in seqs) - 1
    first = seqs[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n if n >= min_prefix else 0
