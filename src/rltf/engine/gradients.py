"""How the engine turns a step's rows into one optimizer step: every loss term's micro-batches
forwarded and backpropagated with their share of the global batch, in lockstep across processes
where the sharding needs it, guarded against non-finite losses and gradients, then clipped and
applied (through DeepSpeed when it wraps the optimizer).

:class:`GradientSteps` is a part of :class:`rltf.engine.engine.Engine` (its base class), kept in its
own module so that the engine's file reads as orchestration. It uses the engine's ``config``,
``method``, ``model``, ``optimizer``, ``engine`` (DeepSpeed's, or None), ``dist``, ``backend``,
``step``, ``lockstep``, ``shared_prefix``, ``sharded``, ``method_state``, ``weights_version``,
``idle_loss()`` and ``_last_checkpoint()``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from rltf.errors import NonFiniteError
from rltf.rollout import KINDS, RolloutBatch
from rltf.rollout.batch import MIN_SHARED_PREFIX, NO_SHARED_PREFIX
from rltf.engine import zero
from rltf.engine.distributed import is_dtensor
from rltf.engine.loop import guarded_step
from rltf.engine.parts import Collected
from rltf.engine.sharding import total_grad_norm


class GradientSteps:
    """Accumulate the loss terms' gradients over micro-batches (and processes), then apply them."""

    def reuse_rollout(self, collected: Collected, seed: int, norms: list[float]) -> dict[str, float]:
        """One optimizer step per minibatch of the method's ``minibatches`` (PPO's epochs): their
        losses and statistics averaged over the steps; each step's gradient norm appended to ``norms``."""
        sums: dict[str, float] = {}
        updates = 0
        for rows, normaliser in self.method.minibatches(self, collected, seed):
            for k, v in self.accumulate(rows, normaliser, 1.0).items():
                sums[k] = sums.get(k, 0.0) + v
            norms.append(self.apply_gradients())
            updates += 1
        return {k: v / max(updates, 1) for k, v in sums.items()}

    def drop_zero_advantage(self, batch: RolloutBatch) -> RolloutBatch:
        """Leave out the forward pass of rows whose advantage is exactly 0, where that is exact for
        their loss term (:attr:`LossTerm.skip_zero_advantage`)."""
        if batch.advantages is None:
            return batch
        skip = {kind: term.skip_zero_advantage(self.config) for kind, term in self.method.terms.items()}
        nonzero = (batch.advantages != 0).any(dim=1).tolist()
        keep = [b for b, kind in enumerate(batch.kind) if nonzero[b] or not skip.get(kind, False)]
        return batch if len(keep) == len(batch) else batch.select(keep)

    def accumulate(self, batch: RolloutBatch, n_episodes: int, scale: float) -> dict[str, float]:
        """Forward/backward every micro-batch of every loss term of this process's ``batch``. Each
        micro-batch's loss is the term's loss x its coefficient x its share of the whole global batch
        (:meth:`share`): ``n_episodes`` and the token counts are global, so the sum over micro-batches
        AND processes equals the loss of the global batch. Returns the step's losses summed over
        processes, and each loss statistic as its mean over the term's tokens (micro-batches weighted
        by their tokens: the same whatever the split)."""
        c = self.config
        totals: dict[str, float] = {}
        self.backend.sleep()  # vLLM on CUDA: its memory is the trainer's until the next rollout
        self.model.train()
        device = self.model.device if hasattr(self.model, "device") else self.device
        by_kind = {kind: batch.of_kind(kind) for kind in KINDS}
        counts = self.dist.sum_dict({f"{kind}/{what}": float(n) for kind, rows in by_kind.items() for what, n in
                                     (("rows", len(rows)), ("tokens", int(rows.completion_mask.sum())))})
        min_prefix = MIN_SHARED_PREFIX if self.shared_prefix else NO_SHARED_PREFIX
        planned = {kind: rows.micro_batches(c.micro_batch_size, c.micro_batch_tokens, min_prefix, c.micro_batch_order)
                   if len(rows) else [] for kind, rows in by_kind.items()}
        passes = {kind: len(parts) for kind, parts in planned.items()}
        if self.lockstep:  # every process runs as many forward/backward passes as the busiest one
            passes = {kind: max(p[kind] for p in self.dist.gather_object(passes)) for kind in KINDS}
        error = None
        for kind, rows in by_kind.items():
            all_rows, all_tokens = int(counts[f"{kind}/rows"]), int(counts[f"{kind}/tokens"])
            if not all_rows:
                continue
            term = self.method.terms.get(kind)
            if term is None:
                raise ValueError(f"{self.method.name} collected {kind!r} rows but has no {kind!r} loss term")
            coefficient = term.coefficient(c, self.step)
            loss_sum = 0.0
            parts = planned[kind]
            for k in range(passes[kind] if self.lockstep else len(parts)):
                if k >= len(parts) or error:  # lockstep: the collectives of a pass this process lacks
                    self._backward(self._forward((lambda: term.idle(self)) if term.idle else self.idle_loss))
                    continue
                part = parts[k].to(device)
                loss, stats = self._forward(lambda: term.loss(self, part))
                if coefficient != 1.0:
                    loss = coefficient * loss
                totals["tokens/trained"] = totals.get("tokens/trained", 0.0) + part.model_inputs(min_prefix).n_tokens
                loss = loss * self.share(part, n_episodes, all_tokens) * scale
                if not torch.isfinite(loss):
                    error = f"non-finite {kind} loss ({loss.item()})"
                    if self.lockstep:  # the pass's collectives still run; the step will not be applied
                        self._backward(loss)
                        continue
                    break
                self._backward(loss)
                loss_sum += loss.item()
                weight = int(part.completion_mask.sum()) / max(all_tokens, 1)  # stats: token-weighted means
                for name, value in stats.items():
                    totals[f"{kind}/{name}"] = totals.get(f"{kind}/{name}", 0.0) + value * weight
            totals[f"loss/{kind}"] = totals.get(f"loss/{kind}", 0.0) + loss_sum
            if error and not self.lockstep:
                break
        error = self.dist.first_error(error)  # every process stops, not just the one
        if error:
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"{error} at step {self.step + 1}; the step was not applied; "
                                 f"last good checkpoint: {self._last_checkpoint()}")
        return self.dist.sum_dict(totals)

    def share(self, part: RolloutBatch, n_episodes: int, all_tokens: int) -> float:
        """token-mean: the micro-batch's share of the term's tokens; otherwise its share of the
        episodes (sum and seq-mean-token-mean are normalised by the number of episodes)."""
        if self.config.loss_aggregation == "token-mean":
            return int(part.completion_mask.sum()) / max(all_tokens, 1)
        return len(part) / max(n_episodes, 1)

    def apply_gradients(self) -> float:
        """Guard, clip and apply the accumulated gradients (one optimizer step) -> gradient norm;
        then the method's state follows the new weights (e.g. an EMA teacher)."""
        where = f"at step {self.step + 1}; the step was not applied; last good checkpoint: {self._last_checkpoint()}"
        if self.engine is not None:  # an idle pass marked as the accumulation boundary, then DeepSpeed's step
            self.engine.set_gradient_accumulation_boundary(True)
            self._backward(self.engine(self.idle_loss))
            norm = zero.step(self.engine, where)
        else:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            self.dist.sum_gradients(p for p in params if not is_dtensor(p))  # FSDP reduced the sharded ones
            norm = guarded_step(self.optimizer, self.config.max_grad_norm, where,
                                norm_fn=total_grad_norm if self.sharded else None)
        self.weights_version += 1
        if self.method_state is not None:
            self.method_state.after_update(self)
        return norm

    def _forward(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, a loss computed from the trained modules: through the DeepSpeed engine when there
        is one (ZeRO-3 gathers each module's parameters around its forward)."""
        if self.engine is None:
            return fn()
        self.engine.set_gradient_accumulation_boundary(False)  # the optimizer step's own pass closes it
        return self.engine(fn)

    def _backward(self, loss: torch.Tensor) -> None:
        """Accumulate ``loss``'s gradients. DeepSpeed averages gradients over the processes while
        rltf's losses carry the global normalisation (gradients are summed): x world size undoes it."""
        if self.engine is not None:
            self.engine.backward(loss * self.dist.world_size, scale_wrt_gas=False)
        else:
            loss.backward()
