"""The training loop shared by every trainer: model set-up (full or LoRA), optimizer and schedule,
micro-batched loss accumulation, guards, evaluation, logging, checkpoints and exact resume.

Subclasses implement :meth:`Trainer.make_batch` (rollout -> one :class:`~rltf.rollout.RolloutBatch`
+ metrics) and :meth:`Trainer.sequence_loss` (one micro-batch of one loss term -> loss).
"""
from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import torch

from rltf.errors import ConfigError
from rltf.feedback import JudgeConfig, build_feedback
from rltf.models import load_model, load_tokenizer
from rltf.models.engines import build_backend, resolve_backend, vllm_options
from rltf.models.loading import resolve_device
from rltf.rollout import KINDS, RolloutBatch
from rltf.tasks import get_task
from rltf.trainers import checkpoint as ckpt
from rltf.trainers.config import TrainConfig
from rltf.trainers.data import ProblemStream
from rltf.trainers.distributed import Distributed, is_dtensor
from rltf.trainers.held_out import HeldOutEvaluation
from rltf.trainers.rollout_side import RolloutSide
from rltf.trainers import zero
from rltf.trainers.sharding import full_weights, idle_loss, shard_model, total_grad_norm
from rltf.trainers.loop import NonFiniteError, TrainingRun, guarded_step, lr_lambda  # noqa: F401 - re-exported
from rltf.trainers.lora import wrap_lora
from rltf.trainers.methods import citation_for, get_method
from rltf.trainers.metrics_logger import MetricsLogger


class Trainer(RolloutSide, HeldOutEvaluation, TrainingRun):
    """The RL trainers' shared part: policy, reference, rollout backend, feedback, micro-batched losses, evaluation."""

    def __init__(self, config: TrainConfig, console: Callable[[str], None] = print, resume: str | None = None):
        self.dist = Distributed(config.device)
        self.config, self.console = config, self.dist.speaker(console)
        self.dist.shard_bounds(config.prompts_per_step, "prompts per step (prompts_per_step)")  # fails early
        self.method = get_method(config.method)
        self.citation = citation_for(config)
        self.output_dir = Path(config.output_dir)
        torch.manual_seed(config.seed)
        self.resume_from = ckpt.resolve_resume(resume) if resume else None
        self.task = get_task(config.task)
        self.device = self.dist.device(resolve_device(config.device))
        self.tokenizer = load_tokenizer(config.model)
        source = config.model
        if self.resume_from is not None and not config.use_lora:
            source = str(self.resume_from / "model")
        model = load_model(source, dtype=config.dtype, device=self.device, seed=config.seed, tokenizer=self.tokenizer)
        self.ref_model = None
        if self.needs_reference and not config.use_lora:  # with LoRA the reference is the base (adapters off)
            self.ref_model = load_model(config.model, dtype=config.dtype, device=self.device, seed=config.seed,
                                        tokenizer=self.tokenizer)
            self.ref_model.requires_grad_(False)
        if config.use_lora:
            model = self._wrap_lora(model)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            if config.use_lora:
                model.enable_input_require_grads()
        self.model = model
        choice = resolve_backend(config.backend, self.expected_tokens())
        options = vllm_options(config, self.rollout_tokens()) if choice == "vllm" else None  # only vLLM sizes a cache
        self.backend = build_backend(choice, model, self.tokenizer, batch_size=config.generation_batch_size,
                                     autocast_bf16=config.bf16_autocast, options=options, seed=config.seed)
        self.weights_version = self.synced_version = 0  # optimizer steps applied / seen by the backend
        self.feedback = self.make_feedback()
        self.extra_modules = self.build_extra_modules(model)
        self.init_state()
        self.dist.broadcast_parameters([model, *self.extra_modules.values()])  # as DDP does: rank 0's start
        self.sharded = self.dist.fsdp is not None
        if (self.sharded or self.dist.zero is not None) and config.use_lora:
            raise ConfigError("LoRA trains data parallel (each process holds the base model and adapters); "
                              f"use a MULTI_GPU accelerate config, not {'FSDP' if self.sharded else 'DeepSpeed'}, "
                              "with use_lora")
        if self.sharded:  # after the backend started (a vLLM engine loads the full weights)
            shard_model(model, self.dist.fsdp)
        self.root = zero.TrainedModules({"policy": model, **self.extra_modules})
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        groups += [{"params": list(m.parameters()), **self.extra_param_group_options(name)}
                   for name, m in self.extra_modules.items()]
        self.setup_optimization(groups, config.max_steps)
        if self.dist.zero is not None:  # DeepSpeed wraps the optimizer; the schedule stays on rltf's AdamW
            self.engine = zero.initialize(self.root, self.optimizer, self.dist.zero, config.max_grad_norm)
        self.generated_tokens = 0
        self.last_accuracy: float | None = None
        self.eval_drafts: dict[str, str] | None = None  # the initial policy's held-out answers (eval_drafts)
        self.history: list[dict[str, Any]] = []
        position = 0
        if self.resume_from is not None:
            position = self._restore(self.resume_from)
            self.weights_version += 1  # restored state may include weights the backend has not seen
        self.stream = self.make_stream(position)

    # -- set-up -----------------------------------------------------------------------------
    @property
    def has_kl_term(self) -> bool:
        """A KL term to the initial policy: kl_coef, or a first-turn anchor (SCoRe's first_turn_kl)."""
        return bool(self.config.kl_coef or getattr(self.config, "first_turn_kl", 0.0))

    @property
    def needs_reference(self) -> bool:
        """Whether the frozen initial policy is loaded (a KL term, or e.g. SDPO's initial teacher)."""
        return self.has_kl_term

    @property
    def shared_prefix(self) -> bool:
        """Whether training forwards encode the prompts' shared prefix once (two model calls): not
        in lockstep, where every process must make the same calls and some have no shared prefix."""
        return not self.lockstep

    def full_weights(self):
        """Context in which the policy's weights are whole on every process (FSDP2 and ZeRO-3 gather
        them; otherwise nothing to do): rollouts, evaluation and no-grad scoring run inside it."""
        return zero.gathered(self.engine) if self.engine is not None else full_weights(self.model)

    def state_root(self) -> torch.nn.Module:
        """The policy and the extra modules as one module: the names the optimizer state is saved under."""
        return self.root

    def idle_loss(self) -> torch.Tensor:
        """A loss that touches every trained parameter and changes no gradient (x 0): the pass of a
        micro-batch this process does not have, in lockstep training. Methods with an extra trained
        module (a value head) add it."""
        return idle_loss(self.model, self.tokenizer.eos_token_id)

    def idle_pass(self, kind: str) -> torch.Tensor:
        """The idle pass of loss term ``kind``: :meth:`idle_loss`, plus whatever other forwards of the
        sharded policy one micro-batch of that term makes (e.g. SDPO's live teacher), in the same order."""
        return self.idle_loss()

    def _wrap_lora(self, model):
        return wrap_lora(model, self.config, self.resume_from / "adapter" if self.resume_from else None)

    def _restore(self, checkpoint: Path) -> int:
        state = self.restore_common(checkpoint)
        for name, module in self.extra_modules.items():
            module.load_state_dict(state["extra_modules"][name])
        self.load_state_extras(state)
        self.generated_tokens = state.get("generated_tokens", 0)
        self.last_accuracy = state.get("last_accuracy")
        self.history = state.get("history", [])
        self.eval_drafts = state.get("eval_drafts")
        return state["position"]

    # -- subclass hooks ---------------------------------------------------------------------
    def judge_config(self) -> JudgeConfig:
        """The judge options of this process: ``judge_concurrency`` is the cap over ALL processes,
        so each of P processes keeps at most ceil(cap / P) requests in flight."""
        judge = JudgeConfig.from_options(self.config)
        return dataclasses.replace(judge, concurrency=max(1, -(-judge.concurrency // self.dist.world_size)))

    def make_feedback(self):
        """The critique provider of the rollouts (``config.feedback``)."""
        return build_feedback(self.config.feedback, self.backend, self.judge_config())

    def make_stream(self, position: int):
        """Where each step's prompts come from: the task's train split (``take(n)``, ``position``)."""
        return ProblemStream(self.task, self.config.seed, position)

    def build_extra_modules(self, model) -> dict[str, torch.nn.Module]:
        """Trainable modules besides the policy (e.g. a value head): optimised, checkpointed, resumed.
        Called once in ``__init__``, after the policy and before the optimizer exist."""
        return {}

    def init_state(self) -> None:
        """Create the subclass's own training state (e.g. an adaptive KL controller). Called once in
        ``__init__`` before a checkpoint is restored; :meth:`load_state_extras` then overwrites it."""

    def extra_param_group_options(self, name: str) -> dict[str, Any]:
        """Optimizer options of an extra module's parameter group (e.g. its own learning rate)."""
        return {}

    def state_extras(self) -> dict[str, Any]:
        """Extra trainer state saved in checkpoints (e.g. an adaptive KL coefficient)."""
        return {}

    def load_state_extras(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_extras` saved."""

    @contextmanager
    def reference_model(self):
        """The frozen reference policy: the initial model, or with LoRA the base weights (adapters off)."""
        if self.ref_model is not None:
            yield self.ref_model
        elif hasattr(self.model, "disable_adapter"):
            with self.model.disable_adapter():
                yield self.model
        else:
            raise ConfigError("this run has no reference model (set kl_coef > 0)")

    @abstractmethod
    def make_batch(self, problems, seed: int) -> tuple[RolloutBatch, dict[str, float], int]:
        """Roll out ``problems`` and return (the step's training sequences, metrics, number of episodes)."""

    @abstractmethod
    def sequence_loss(self, kind: str, batch: RolloutBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch of the sequences of loss term ``kind`` (already weighted by the
        term's coefficient), aggregated as :func:`rltf.algorithms.aggregate` does."""

    # -- the loop ---------------------------------------------------------------------------
    def _accumulate(self, batch: RolloutBatch, n_episodes: int, scale: float) -> dict[str, float]:
        """Forward/backward every micro-batch of every loss term of this process's ``batch``. Each
        micro-batch's loss is re-weighted so that the sum over micro-batches AND processes equals the
        loss of the whole global batch (``_share``): ``n_episodes`` and the token counts are global.
        Returns the step's losses summed over processes, and each loss statistic as its mean over the
        term's tokens (micro-batches weighted by their tokens: the same whatever the split)."""
        c = self.config
        totals: dict[str, float] = {}
        self.backend.sleep()  # vLLM on CUDA: its memory is the trainer's until the next rollout
        self.model.train()
        device = self.model.device if hasattr(self.model, "device") else self.device
        by_kind = {kind: batch.of_kind(kind) for kind in KINDS}
        counts = self.dist.sum_dict({f"{kind}/{what}": float(n) for kind, rows in by_kind.items() for what, n in
                                     (("rows", len(rows)), ("tokens", int(rows.completion_mask.sum())))})
        mb = c.micro_batch_size
        passes = {kind: -(-len(rows) // mb) for kind, rows in by_kind.items()}
        if self.lockstep:  # every process runs as many forward/backward passes as the busiest one
            passes = {kind: max(p[kind] for p in self.dist.gather_object(passes)) for kind in KINDS}
        error = None
        for kind, rows in by_kind.items():
            all_rows, all_tokens = int(counts[f"{kind}/rows"]), int(counts[f"{kind}/tokens"])
            if not all_rows:
                continue
            loss_sum = 0.0
            parts = list(rows.split(mb)) if len(rows) else []
            for k in range(passes[kind] if self.lockstep else len(parts)):
                if k >= len(parts) or error:  # lockstep: the collectives of a pass this process lacks
                    self._backward(self._forward(lambda: self.idle_pass(kind)))
                    continue
                part = parts[k].to(device)
                loss, stats = self._forward(lambda: self.sequence_loss(kind, part))
                totals["tokens/trained"] = totals.get("tokens/trained", 0.0) + part.model_inputs(
                    min_prefix=32 if self.shared_prefix else 1 << 30).n_tokens
                loss = loss * self._share(part, n_episodes, all_tokens) * scale
                if not torch.isfinite(loss):
                    error = f"non-finite {kind} loss ({loss.item()})"
                    if self.lockstep:  # the pass's collectives still run; the step will not be applied
                        self._backward(loss)
                        continue
                    break
                self._backward(loss)
                loss_sum += loss.item()
                weight = int(part.completion_mask.sum()) / max(all_tokens, 1)  # stats: token-weighted means
                for k_, v in stats.items():
                    totals[f"{kind}/{k_}"] = totals.get(f"{kind}/{k_}", 0.0) + v * weight
            totals[f"loss/{kind}"] = totals.get(f"loss/{kind}", 0.0) + loss_sum
            if error and not self.lockstep:
                break
        error = self.dist.first_error(error)  # every process stops, not just the one
        if error:
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"{error} at step {self.step + 1}; the step was not applied; "
                                 f"last good checkpoint: {self._last_checkpoint()}")
        return self.dist.sum_dict(totals)

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

    def _share(self, part: RolloutBatch, n_episodes: int, all_tokens: int) -> float:
        """token-mean: the micro-batch's share of the term's tokens; otherwise its share of the
        episodes (sum and seq-mean-token-mean are normalised by the number of episodes)."""
        if self.config.loss_aggregation == "token-mean":
            return int(part.completion_mask.sum()) / max(all_tokens, 1)
        return len(part) / max(n_episodes, 1)

    def _last_checkpoint(self) -> str:
        found = ckpt.list_checkpoints(self.output_dir)
        return str(found[-1]) if found else "none yet"

    def _apply_gradients(self) -> float:
        """Guard, clip and apply the accumulated gradients (one optimizer step) -> gradient norm."""
        if self.engine is not None:  # an idle pass marked as the accumulation boundary, then DeepSpeed's step
            self.engine.set_gradient_accumulation_boundary(True)
            self._backward(self.engine(self.idle_loss))
            norm = zero.step(self.engine, f"at step {self.step + 1}; the step was not applied; "
                                          f"last good checkpoint: {self._last_checkpoint()}")
            self.weights_version += 1
            return norm
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.dist.sum_gradients(p for p in params if not is_dtensor(p))  # FSDP reduced the sharded ones
        norm = guarded_step(self.optimizer, self.config.max_grad_norm,
                            f"at step {self.step + 1}; the step was not applied; "
                            f"last good checkpoint: {self._last_checkpoint()}",
                            norm_fn=total_grad_norm if self.sharded else None)
        self.weights_version += 1
        return norm

    def _finish_step(self, metrics: dict[str, float], t_start: float, generated: int) -> dict[str, float]:
        """Count the step and the ``generated`` tokens of all its rollouts (the token budget's unit)."""
        self.step += 1
        self.generated_tokens += generated
        metrics["tokens/cumulative"] = float(self.generated_tokens)
        metrics["loss/total"] = sum(v for k, v in metrics.items() if k.startswith("loss/"))
        metrics.update({"lr": self.scheduler.get_last_lr()[0], "time/step": time.perf_counter() - t_start})
        if getattr(self, "sync_seconds", None) is not None:
            metrics["time/weight_sync"] = self.sync_seconds
            self.sync_seconds = None
        if metrics.get("tokens/generated") and metrics.get("time/generate"):
            metrics["tokens/per_s"] = metrics["tokens/generated"] / metrics["time/generate"]
        return metrics

    # -- the loop's hooks --------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.config.max_steps

    def checkpoint_state(self) -> dict[str, Any]:
        return {"position": self.stream.position, "generated_tokens": self.generated_tokens,
                "last_accuracy": self.last_accuracy, "history": self.history, "eval_drafts": self.eval_drafts,
                "extra_modules": {name: m.state_dict() for name, m in self.extra_modules.items()},
                **self.state_extras()}

    def card_accuracy(self) -> float | None:
        return self.last_accuracy

    def done(self) -> bool:
        budget = self.config.max_generated_tokens
        return self.step >= self.config.max_steps or bool(budget and self.generated_tokens >= budget)

    def on_start(self, logger: MetricsLogger) -> None:
        self._tokens_seen = self.generated_tokens
        self._eval_points = [int(float(x)) for x in str(self.config.eval_at_tokens or "").replace(" ", "").split(",")
                             if x]
        if self.config.eval_at_start and self.step == 0:
            ev = self.evaluate()
            self.history.append({"step": 0, "tokens": 0, **ev})
            logger.log(0, ev, console=self.console)
            self.console(f"step 0: held-out accuracy {ev['eval/accuracy']:.3f}")

    def after_step(self, metrics: dict[str, float], last: bool) -> None:
        """Held-out evaluation every ``eval_every`` steps, at the last step, and at the first step
        whose cumulative generated tokens reach each of ``eval_at_tokens`` (rltf compare)."""
        c = self.config
        crossed = any(self._tokens_seen < p <= self.generated_tokens for p in self._eval_points)
        self._tokens_seen = self.generated_tokens
        if (c.eval_every and self.step % c.eval_every == 0) or last or crossed:
            metrics.update(self.evaluate())
            self.history.append({"step": self.step, "tokens": self.generated_tokens,
                                 **{k: v for k, v in metrics.items() if k.startswith("eval/")}})

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "final_accuracy": self.last_accuracy, "history": self.history,
                "generated_tokens": self.generated_tokens, "checkpoint": self._last_checkpoint()}
