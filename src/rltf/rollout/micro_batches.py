"""How a loss term's rows are cut into micro-batches: which rows go through the model together.

The cost of a micro-batch is the number of token positions the model runs on
(:attr:`rltf.rollout.batch.ModelInputs.n_tokens`): its rows' shared prompt prefix once, then every
row padded to the longest rest of prompt and the longest completion. A two-turn step's rows differ
a lot (a first answer after the question, a revision after the question, the first answer and the
critique), so cutting them in collection order pads the short rows to the long ones and breaks the
shared prefix. The planner keeps each turn's rows together, each problem's rows adjacent (they share
the question as well as the few-shot prefix), and cuts where adding a row would cost more than
starting a new micro-batch with it, at ``size`` rows, or past ``max_tokens``.

The loss of every term is a sum over rows normalised by global counts, so which rows share a
micro-batch changes no loss and no gradient (up to the order of floating-point additions).
"""
from __future__ import annotations

from collections.abc import Sequence


class OpenMicroBatch:
    """The micro-batch being filled, with what its cost depends on."""

    def __init__(self, min_prefix: int):
        self.min_prefix = min_prefix
        self.rows: list[int] = []
        self.first: list[int] = []  # the first row's prompt
        self.common = 0  # leading tokens every prompt so far shares
        self.shortest = 0  # shortest prompt
        self.longest = 0  # longest prompt
        self.completion = 0  # longest completion

    def _common_with(self, prompt: Sequence[int]) -> int:
        """Leading tokens ``prompt`` shares with every prompt so far."""
        if not self.rows:
            return len(prompt)
        n, limit = 0, min(self.common, len(prompt))
        while n < limit and prompt[n] == self.first[n]:
            n += 1
        return n

    def _positions(self, rows: int, common: int, shortest: int, longest: int, completion: int) -> int:
        """What :meth:`rltf.rollout.batch.RolloutBatch.model_inputs` runs on: the shared prefix once
        (all but the last token of the shortest prompt at most; none below ``min_prefix`` or for one
        row), then every row padded to the longest rest of prompt and the longest completion."""
        shared = min(common, shortest - 1) if rows > 1 else 0
        shared = shared if shared >= self.min_prefix else 0
        return shared + rows * (longest - shared + max(completion, 1))

    def cost(self) -> int:
        """Positions the model runs on for the rows so far."""
        return self._positions(len(self.rows), self.common, self.shortest, self.longest, self.completion)

    def cost_with(self, prompt: Sequence[int], completion: int) -> int:
        """Positions the model would run on with a row of ``prompt`` and ``completion`` tokens added."""
        if not self.rows:
            return self._positions(1, len(prompt), len(prompt), len(prompt), completion)
        return self._positions(len(self.rows) + 1, self._common_with(prompt), min(self.shortest, len(prompt)),
                               max(self.longest, len(prompt)), max(self.completion, completion))

    def add(self, row: int, prompt: Sequence[int], completion: int) -> None:
        self.common = self._common_with(prompt)
        if not self.rows:
            self.first, self.shortest, self.longest = list(prompt), len(prompt), len(prompt)
        self.shortest, self.longest = min(self.shortest, len(prompt)), max(self.longest, len(prompt))
        self.completion = max(self.completion, completion)
        self.rows.append(row)


def plan_micro_batches(prompts: Sequence[Sequence[int]], completion_lengths: Sequence[int], turns: Sequence[int],
                       groups: Sequence[int], size: int, max_tokens: int = 0, min_prefix: int = 32) -> list[list[int]]:
    """Row indices of each micro-batch, in the order they run.

    Rows are ordered by turn, then problem (``groups``), then collection order; a new micro-batch
    starts when the open one has ``size`` rows, when adding the row would take it past ``max_tokens``
    positions (0: no limit; a row longer than the limit runs alone), or when adding it would cost
    more positions than running it alone (its prompt shares too little with the open micro-batch's).
    ``min_prefix``: the shortest shared prefix that is encoded once (as in
    :meth:`rltf.rollout.batch.RolloutBatch.model_inputs`)."""
    if size < 1:
        raise ValueError(f"micro-batch size must be >= 1, got {size}")
    order = sorted(range(len(prompts)), key=lambda i: (turns[i], groups[i], i))
    plan: list[list[int]] = []
    open_ = OpenMicroBatch(min_prefix)
    for i in order:
        prompt, completion = prompts[i], completion_lengths[i]
        if open_.rows:
            after = open_.cost_with(prompt, completion)
            alone = len(prompt) + max(completion, 1)
            if len(open_.rows) >= size or (max_tokens and after > max_tokens) or after - open_.cost() > alone:
                plan.append(open_.rows)
                open_ = OpenMicroBatch(min_prefix)
        open_.add(i, prompt, completion)
    if open_.rows:
        plan.append(open_.rows)
    return plan
