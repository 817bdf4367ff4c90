"""The one batch type from rollout to loss: :class:`RolloutBatch`, a dataclass of ``[B, T]`` tensors.

A trainer builds it once from its episodes (every training sequence of a step, of every loss term);
later passes fill its per-token fields (old log-probs, values, rewards, advantages, returns);
micro-batches and PPO minibatches are slices of it (:meth:`RolloutBatch.select`), and every loss
reads its inputs from it.

Layout. B sequences; ``P`` prompt columns, ``T`` completion columns. Each prompt is LEFT-aligned
(token 0 in column 0, padding after it), so the prefix that all prompts share (the few-shot
examples) is column-aligned; each completion is right-padded. ``prompt_mask`` / ``completion_mask``
are True on real tokens; ``completion_mask`` is also the loss mask (the tokens that carry a loss:
the answer for RL/SD/PPO, the critique for FM). Per-token float fields are ``[B, T]`` with 0 off the
mask, or None until a pass fills them. Slicing trims the columns to the longest row of the slice,
so a micro-batch is padded exactly as if it had been built alone.

The model's view of a batch (:meth:`RolloutBatch.model_inputs`) is
``[shared prefix | pad ... rest of prompt | completion ... pad]``: the shared prefix is encoded once
and its KV cache expanded to the batch; the rest of each prompt is left-padded so every completion
starts at the same column.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterator, Sequence

import torch

from rltf.models.hf_backend import shared_prefix_len
from rltf.rollout.micro_batches import plan_micro_batches

# the shortest common prompt prefix encoded once for a whole micro-batch; NO_SHARED_PREFIX: never (one
# model call per batch, as sharded training needs the same calls on every process)
MIN_SHARED_PREFIX = 32
NO_SHARED_PREFIX = 1 << 30
KINDS = ("rl", "sd", "fm", "refine", "ppo", "sft")  # the loss term a sequence feeds (refine: Critique-GRPO)
TOKEN_FIELDS = ("advantages", "sampler_logprobs", "old_logprobs", "ref_logprobs", "values", "token_rewards", "returns",
                "kl")


@dataclass
class ModelInputs:
    """What the model is run on for a batch (see the module docstring)."""

    input_ids: torch.Tensor  # [B, L] the rest of each prompt (left-padded) + completion (right-padded)
    attention_mask: torch.Tensor  # [B, S + L] (the shared prefix included)
    position_ids: torch.Tensor  # [B, L]
    prefix_ids: torch.Tensor | None  # [1, S] the prompts' shared prefix, encoded once; None when S = 0
    completion_len: int  # T: the last T positions of input_ids are the completion columns

    @property
    def n_tokens(self) -> int:
        """Tokens that go through the model (the shared prefix once)."""
        return self.input_ids.numel() + (self.prefix_ids.numel() if self.prefix_ids is not None else 0)


@dataclass
class RolloutBatch:
    prompt_ids: torch.Tensor  # [B, P] long, left-aligned, pad after each prompt
    prompt_mask: torch.Tensor  # [B, P] bool
    completion_ids: torch.Tensor  # [B, T] long, right-padded (pad_id)
    completion_mask: torch.Tensor  # [B, T] bool: completion tokens = the tokens that carry a loss
    kind: tuple[str, ...]  # [B] the loss term of each sequence: rl, sd, fm, ppo or sft
    turn: torch.Tensor  # [B] long: which answer of the episode the completion is (0 first, 1 revision; FM: 0)
    group: torch.Tensor  # [B] long: the prompt's index in the step (its GRPO group)
    pad_id: int = 0
    advantages: torch.Tensor | None = None  # [B, T] float32, per token (a sequence's advantage on each of its tokens)
    sampler_logprobs: torch.Tensor | None = None  # [B, T] log-probs under the sampler; 0 where unknown (FM targets)
    old_logprobs: torch.Tensor | None = None  # [B, T] PPO: under the policy before the update
    ref_logprobs: torch.Tensor | None = None  # [B, T] under the frozen reference policy
    values: torch.Tensor | None = None  # [B, T] PPO: the value head's estimates before the update
    token_rewards: torch.Tensor | None = None  # [B, T] PPO: per-token rewards from spans (or the last-token score)
    returns: torch.Tensor | None = None  # [B, T] PPO: GAE returns, the value head's targets
    kl: torch.Tensor | None = None  # [B, T] PPO: per-token KL to the reference (k1 or full)
    context_ids: torch.Tensor | None = None  # [B, C] another prompt for the same completion (SDPO's teacher
    context_mask: torch.Tensor | None = None  # context), left-aligned like prompt_ids; see with_context()

    def __post_init__(self):
        B, T = self.completion_ids.shape
        if self.prompt_ids.shape[0] != B or len(self.kind) != B or self.turn.shape != (B,) or self.group.shape != (B,):
            raise ValueError(f"RolloutBatch rows disagree: {self.prompt_ids.shape[0]} prompts, {B} completions, "
                             f"{len(self.kind)} kinds, turn {tuple(self.turn.shape)}, group {tuple(self.group.shape)}")
        unknown = set(self.kind) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown sequence kind(s) {sorted(unknown)}; kinds are {KINDS}")
        for name in TOKEN_FIELDS:
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (B, T):
                raise ValueError(f"RolloutBatch.{name} has shape {tuple(value.shape)}, expected {(B, T)}")

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_sequences(cls, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], *,
                       kind: Sequence[str], turn: Sequence[int], group: Sequence[int], pad_id: int,
                       advantages: Sequence[float] | torch.Tensor | None = None,
                       sampler_logprobs: Sequence[Sequence[float] | None] | None = None,
                       token_rewards: Sequence[Sequence[float] | torch.Tensor] | None = None,
                       contexts: Sequence[Sequence[int]] | None = None) -> RolloutBatch:
        """Pad B token lists into a batch. ``advantages``: one per sequence, a list or a [B] tensor (put
        on each of its tokens);
        ``sampler_logprobs`` and ``token_rewards``: one list per sequence, as long as its completion
        (a sampler log-prob row may be None: unknown, stored as 0); ``contexts``: a second prompt per
        sequence (empty where there is none)."""
        B = len(completions)
        if len(prompts) != B:
            raise ValueError(f"{len(prompts)} prompts for {B} completions")
        P = max((len(p) for p in prompts), default=0)
        T = max(max((len(c) for c in completions), default=0), 1)
        prompt_ids = torch.full((B, P), pad_id, dtype=torch.long)
        completion_ids = torch.full((B, T), pad_id, dtype=torch.long)
        for b, (p, c) in enumerate(zip(prompts, completions)):
            prompt_ids[b, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
            completion_ids[b, :len(c)] = torch.as_tensor(list(c), dtype=torch.long)
        prompt_mask = torch.arange(P) < torch.tensor([len(p) for p in prompts]).unsqueeze(1)
        completion_mask = torch.arange(T) < torch.tensor([len(c) for c in completions]).unsqueeze(1)
        batch = cls(prompt_ids, prompt_mask.reshape(B, P), completion_ids, completion_mask.reshape(B, T), tuple(kind),
                    torch.tensor(list(turn), dtype=torch.long).reshape(B), torch.tensor(list(group), dtype=torch.long).reshape(B),
                    pad_id)
        if advantages is not None:
            per_seq = torch.as_tensor(advantages if torch.is_tensor(advantages) else list(advantages),
                                      dtype=torch.float32).reshape(B, 1)
            batch.advantages = per_seq * batch.completion_mask
        if sampler_logprobs is not None:
            batch.sampler_logprobs = batch.pad_rows(sampler_logprobs)
        if token_rewards is not None:
            batch.token_rewards = batch.pad_rows(token_rewards)
        if contexts is not None:
            if len(contexts) != B:
                raise ValueError(f"{len(contexts)} contexts for {B} completions")
            C = max(max((len(x) for x in contexts), default=0), 1)
            batch.context_ids = torch.full((B, C), pad_id, dtype=torch.long)
            for b, x in enumerate(contexts):
                batch.context_ids[b, :len(x)] = torch.as_tensor(list(x), dtype=torch.long)
            batch.context_mask = torch.arange(C) < torch.tensor([len(x) for x in contexts]).reshape(B, 1)
        return batch

    def with_context(self) -> RolloutBatch:
        """The same completions after their ``context`` prompts (e.g. the teacher's view in SDPO)."""
        if self.context_ids is None:
            raise ValueError("this batch has no context prompts")
        C = max(int(self.context_mask.sum(dim=1).max()) if len(self) else 0, 1)
        return replace(self, prompt_ids=self.context_ids[:, :C], prompt_mask=self.context_mask[:, :C],
                       context_ids=None, context_mask=None)

    def pad_rows(self, rows: Sequence[Sequence[float] | torch.Tensor | None]) -> torch.Tensor:
        """One float row per sequence (each at most T long; None = unknown) -> [B, T] float32, 0-padded."""
        out = torch.zeros(self.completion_ids.shape, dtype=torch.float32)
        for b, row in enumerate(rows):
            if row is not None and len(row):
                values = torch.as_tensor(row, dtype=torch.float32)
                out[b, :len(values)] = values
        return out

    # -- slicing -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def completion_lengths(self) -> torch.Tensor:
        """[B] long: tokens in each completion."""
        return self.completion_mask.sum(dim=1)

    def select(self, index: Sequence[int] | torch.Tensor) -> RolloutBatch:
        """The rows ``index`` (in that order), columns trimmed to the longest selected prompt and completion."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        P = int(self.prompt_mask[idx].sum(dim=1).max()) if len(idx) else 0
        T = max(int(self.completion_mask[idx].sum(dim=1).max()) if len(idx) else 0, 1)
        tensors = {n: getattr(self, n)[idx, :T] for n in TOKEN_FIELDS if getattr(self, n) is not None}
        if self.context_ids is not None:
            C = max(int(self.context_mask[idx].sum(dim=1).max()) if len(idx) else 0, 1)
            tensors.update(context_ids=self.context_ids[idx, :C], context_mask=self.context_mask[idx, :C])
        return replace(self, prompt_ids=self.prompt_ids[idx, :P], prompt_mask=self.prompt_mask[idx, :P],
                       completion_ids=self.completion_ids[idx, :T], completion_mask=self.completion_mask[idx, :T],
                       kind=tuple(self.kind[i] for i in idx.tolist()), turn=self.turn[idx], group=self.group[idx],
                       **tensors)

    def of_kind(self, kind: str) -> RolloutBatch:
        """The sequences that feed loss term ``kind``."""
        return self.select([i for i, k in enumerate(self.kind) if k == kind])

    def split(self, size: int) -> Iterator[RolloutBatch]:
        """Consecutive slices of at most ``size`` rows (micro-batches)."""
        for lo in range(0, len(self), size):
            yield self.select(range(lo, min(lo + size, len(self))))

    def micro_batches(self, size: int, max_tokens: int = 0, min_prefix: int = MIN_SHARED_PREFIX,
                      order: str = "planned") -> list[RolloutBatch]:
        """The rows cut into micro-batches of at most ``size`` rows (and ``max_tokens`` positions
        through the model, 0: no limit) that run on the fewest positions: each turn's rows together,
        each problem's adjacent (:func:`rltf.rollout.micro_batches.plan_micro_batches`). ``order``
        "collected": consecutive slices of ``size`` rows instead (:meth:`split`)."""
        if order == "collected":
            return list(self.split(size))
        plan = plan_micro_batches(self.prompt_lists(), self.completion_mask.sum(dim=1).tolist(), self.turn.tolist(),
                                  self.group.tolist(), size, max_tokens, min_prefix)
        return [self.select(rows) for rows in plan]

    def to(self, device: torch.device | str) -> RolloutBatch:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved)

    # -- the model's view ------------------------------------------------------------------------
    def prompt_lists(self) -> list[list[int]]:
        """Each row's prompt token ids, without padding."""
        lengths = self.prompt_mask.sum(dim=1).tolist()
        return [row[:n] for row, n in zip(self.prompt_ids.tolist(), lengths)]

    def shared_prefix_len(self, min_prefix: int = MIN_SHARED_PREFIX) -> int:
        """Leading prompt tokens common to every row, by the rule generation uses
        (:func:`rltf.models.hf_backend.shared_prefix_len`)."""
        return shared_prefix_len(self.prompt_lists(), min_prefix)

    def model_inputs(self, min_prefix: int = MIN_SHARED_PREFIX) -> ModelInputs:
        """The ``[shared prefix | pad ... rest of prompt | completion ... pad]`` layout; position ids
        follow the attention mask, as in generation, so training log-probs match the sampler's."""
        B, T = self.completion_ids.shape
        device = self.completion_ids.device
        shared = self.shared_prefix_len(min_prefix)
        lengths = self.prompt_mask.sum(dim=1) - shared  # [B] the rest of each prompt
        L = int(lengths.max()) if B else 0
        # Column j of the rest block holds prompt token shared + j - (L - length): right-align each rest.
        cols = torch.arange(L, device=device).unsqueeze(0) - (L - lengths).unsqueeze(1) + shared
        rest_mask = cols >= shared
        rest = torch.where(rest_mask, self.prompt_ids.gather(1, cols.clamp(min=0, max=max(self.prompt_ids.shape[1] - 1, 0))),
                           torch.full_like(cols, self.pad_id)) if L else torch.zeros(B, 0, dtype=torch.long, device=device)
        input_ids = torch.cat([rest, self.completion_ids], dim=1)
        attention = torch.cat([torch.ones(B, shared, dtype=torch.long, device=device), rest_mask.long(),
                               self.completion_mask.long()], dim=1)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        prefix = self.prompt_ids[:1, :shared] if shared else None
        return ModelInputs(input_ids, attention, positions, prefix, T)


class BatchRows:
    """A step's training rows, added one at a time in order, then padded once into a RolloutBatch."""

    def __init__(self):
        self.prompts: list[list[int]] = []
        self.completions: list[list[int]] = []
        self.kind: list[str] = []
        self.turn: list[int] = []
        self.group: list[int] = []
        self.advantages: list[torch.Tensor] = []
        self.sampler_logprobs: list[list[float] | None] = []
        self.contexts: list[list[int]] = []

    def add(self, kind: str, prompt: Sequence[int], completion: Sequence[int], *, turn: int, group: int,
            advantage: float | torch.Tensor = 0.0, sampler_logprobs: Sequence[float] | None = None,
            context: Sequence[int] | None = None) -> None:
        """One row of loss term ``kind``: ``completion`` after ``prompt``; ``advantage`` (a float or a
        0-d tensor) on each of its tokens; ``context``: a second prompt for the same completion (SDPO's
        teacher view)."""
        self.prompts.append(list(prompt))
        self.completions.append(list(completion))
        self.kind.append(kind)
        self.turn.append(turn)
        self.group.append(group)
        self.advantages.append(torch.as_tensor(advantage, dtype=torch.float32).reshape(()))
        self.sampler_logprobs.append(None if sampler_logprobs is None else list(sampler_logprobs))
        self.contexts.append(list(context or []))

    def batch(self, pad_id: int) -> RolloutBatch:
        return RolloutBatch.from_sequences(self.prompts, self.completions, kind=self.kind, turn=self.turn,
                                           group=self.group, pad_id=pad_id,
                                           advantages=torch.stack(self.advantages) if self.advantages else [],
                                           sampler_logprobs=self.sampler_logprobs,
                                           contexts=self.contexts if any(self.contexts) else None)
