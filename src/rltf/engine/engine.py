"""The engine: trains a policy with any method, and knows no method by name.

It owns the policy (full or LoRA), the frozen reference, the generation backend (transformers or
vLLM, synced to the current weights), the feedback provider, the optimizer and schedule, the loop,
checkpoints and exact resume, the NaN/inf guards, logging, held-out evaluation and distributed
execution (data parallel, FSDP2, DeepSpeed ZeRO). A method (:class:`rltf.engine.parts.Method`)
says how a step's rows are collected and what loss each kind of row carries. One step reads
top to bottom in :meth:`Engine.train_step`: collect -> accumulate the loss terms -> apply.
"""
from __future__ import annotations

import dataclasses
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import torch

from rltf.algorithms import importance_weights
from rltf.errors import ConfigError, StorageError
from rltf.feedback import JudgeConfig, build_feedback
from rltf.models import load_model, load_tokenizer
from rltf.models.backend import GenerationBackend, render_chat
from rltf.models.engines import build_backend, resolve_backend, vllm_options
from rltf.models.loading import resolve_device
from rltf.rollout import Episode, RolloutBatch, SamplingParams, run_episodes
from rltf.tasks import get_task
from rltf.engine import checkpoint as ckpt
from rltf.engine import held_out, zero
from rltf.engine.config import TrainConfig
from rltf.engine.data import ProblemStream
from rltf.engine.distributed import Distributed
from rltf.engine.forward import completion_forward, completion_logprobs
from rltf.engine.gradients import GradientSteps
from rltf.engine.loop import TrainingRun
from rltf.engine.lora import wrap_lora
from rltf.engine.metrics_logger import MetricsLogger
from rltf.engine.parts import Method, Rollout
from rltf.engine.sharding import full_weights, idle_loss, shard_model


OUTCOMES_FILE = "eval_outcomes.jsonl"  # per evaluation: each held-out answer's score, which each feedback kind fixed


class Engine(GradientSteps, TrainingRun):
    """A policy trained by ``method`` on ``config``: ``Engine(config, method).train()``."""

    def __init__(self, config: TrainConfig, method: Method, console: Callable[[str], None] = print,
                 resume: str | None = None):
        self.dist = Distributed(config.device)
        self.config, self.method, self.console = config, method, self.dist.speaker(console)
        self.dist.shard_bounds(config.prompts_per_step, "prompts per step (prompts_per_step)")  # fails early
        self.citation = method.citation_for(config)
        self.output_dir = Path(config.output_dir)
        torch.manual_seed(config.seed)
        self.resume_from = ckpt.resolve_resume(resume, self.console) if resume else None
        self.task = get_task(config.task)
        self.device = self.dist.device(resolve_device(config.device))
        self.tokenizer = load_tokenizer(config.model)
        # the policy, its frozen reference (with LoRA: the base weights, adapters off) and the backend
        source = config.model
        if self.resume_from is not None and not config.use_lora:
            source = str(self.resume_from / "model")
        model = load_model(source, dtype=config.dtype, device=self.device, seed=config.seed, tokenizer=self.tokenizer)
        self.precision = self.choose_precision(model.config)
        self.console(f"precision: {self.precision.label} ({self.precision.reason})")
        self.ref_model = None
        if method.needs_reference(config) and not config.use_lora:
            self.ref_model = load_model(config.model, dtype=config.dtype, device=self.device, seed=config.seed,
                                        tokenizer=self.tokenizer)
            self.ref_model.requires_grad_(False)
        if config.use_lora:
            model = wrap_lora(model, config, self.resume_from / "adapter" if self.resume_from else None)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            if config.use_lora:
                model.enable_input_require_grads()
        self.model = model
        choice = resolve_backend(config.backend, self.expected_tokens())
        options = vllm_options(config, self.rollout_tokens(), self.precision.engine_dtype) if choice == "vllm" else None
        self.backend = build_backend(choice, model, self.tokenizer, batch_size=config.generation_batch_size,
                                     autocast_bf16=self.autocast_bf16, options=options, seed=config.seed)
        self.weights_version = self.synced_version = 0  # optimizer steps applied / seen by the backend
        self.sync_seconds: float | None = None
        self.feedback = method.feedback(self) if method.feedback is not None else \
            build_feedback(config.feedback, self.backend, self.judge_config())
        # the method's trained heads (a value head) and other state (an EMA teacher, a KL controller)
        self.heads = method.heads(model, config) if method.heads is not None else {}
        self.method_state = method.state(self) if method.state is not None else None
        self.dist.broadcast_parameters([model, *self.heads.values()])  # as DDP does: rank 0's start
        self.sharded = self.dist.fsdp is not None
        if (self.sharded or self.dist.zero is not None) and config.use_lora:
            raise ConfigError("LoRA trains data parallel (each process holds the base model and adapters); "
                              f"use a MULTI_GPU accelerate config, not {'FSDP' if self.sharded else 'DeepSpeed'}, "
                              "with use_lora")
        if self.sharded:  # after the backend started (a vLLM engine loads the full weights)
            shard_model(model, self.dist.fsdp)
        self.root = zero.TrainedModules({"policy": model, **self.heads})
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        groups += [{"params": list(m.parameters()), **method.head_options(config, name)}
                   for name, m in self.heads.items()]
        self.setup_optimization(groups, config.max_steps)
        if self.dist.zero is not None:  # DeepSpeed wraps the optimizer; the schedule stays on rltf's AdamW
            self.engine = zero.initialize(self.root, self.optimizer, self.dist.zero, config.max_grad_norm)
        self.generated_tokens = 0
        self.last_accuracy: float | None = None
        self.eval_drafts: dict[str, str] | None = None  # the initial policy's held-out answers (eval_drafts)
        self.history: list[dict[str, Any]] = []
        self.step_feedback: dict[str, float] | None = None  # the last step's critiques requested/failed
        position = 0
        if self.resume_from is not None:
            position = self._restore(self.resume_from)
            self.weights_version += 1  # restored state may include weights the backend has not seen
        self.stream = method.stream(self, position) if method.stream is not None else \
            ProblemStream(self.task, config.seed, position)

    # -- the step: collect -> accumulate the loss terms -> apply -----------------------------
    def train_step(self) -> dict[str, float]:
        """One training step. Each rollout's rows are collected by the method; every loss term's
        gradient is accumulated over micro-batches; then one optimizer step is applied (or, for a
        method that reuses its rollout, one per minibatch)."""
        c, method = self.config, self.method
        t_start = time.perf_counter()
        feedback_before = (self.feedback.stats.requested, self.feedback.stats.failed, dict(self.feedback.stats.reasons))
        self.optimizer.zero_grad(set_to_none=True)
        rollouts = method.rollouts_per_step(c)  # gradient accumulation over rollouts
        metrics: dict[str, float] = {}
        generated, norms = 0, []
        for r in range(rollouts):
            seed = self.sampling_seed(r)
            t0 = time.perf_counter()
            collected = method.collect(self, self.stream.take(c.prompts_per_step), seed)
            generated += collected.generated
            t1 = time.perf_counter()
            if method.minibatches is None:
                losses = self.accumulate(self.drop_zero_advantage(collected.batch), collected.episodes, 1.0 / rollouts)
            else:
                losses = self.reuse_rollout(collected, seed, norms)
            t2 = time.perf_counter()
            for k, v in {**collected.metrics, **losses, "time/rollout": t1 - t0, "time/backward": t2 - t1}.items():
                metrics[k] = metrics.get(k, 0.0) + v / rollouts
        if method.minibatches is None:
            t3 = time.perf_counter()
            norms.append(self.apply_gradients())
            metrics["time/optimizer"] = time.perf_counter() - t3
        metrics["grad_norm"] = sum(norms) / len(norms) if norms else 0.0
        self.scheduler.step()
        self.step_feedback = self.feedback_since(*feedback_before)
        return self.finish_step(metrics, t_start, generated)

    def feedback_since(self, requested: int, failed: int, reasons: dict[str, int]) -> dict[str, Any]:
        """Critiques requested and failed since the counts given, with the reasons, over every process."""
        stats = self.feedback.stats
        counts = {"requested": stats.requested - requested, "failed": stats.failed - failed,
                  **{f"reason:{k}": v - reasons.get(k, 0) for k, v in stats.reasons.items() if v != reasons.get(k, 0)}}
        return self.dist.sum_dict(counts)

    def stop_request(self) -> str | None:
        """Stop (after a checkpoint) when more than ``max_feedback_failure_rate`` of this step's
        critiques failed: the judge is down or answers garbage, and the run would otherwise go on
        training on correctness-only feedback it was not configured for."""
        seen = self.step_feedback
        limit = self.config.max_feedback_failure_rate
        if not seen or not seen["requested"] or limit >= 1 or seen["failed"] <= limit * seen["requested"]:
            return None
        reasons = ", ".join(f"{k[len('reason:'):]}: {int(v)}" for k, v in sorted(seen.items())
                            if k.startswith("reason:") and v)
        return (f"the feedback provider ({self.config.feedback}) failed for {int(seen['failed'])} of "
                f"{int(seen['requested'])} critiques in step {self.step} ({reasons}), more than "
                f"max_feedback_failure_rate {limit:g}; the failed ones were replaced by correctness-only feedback")

    def sampling_seed(self, rollout: int) -> int:
        """The sampling seed of this step's ``rollout``-th rollout (a resumed run draws the same samples)."""
        return self.config.seed * 1_000_003 + (self.step + 1) * 101 + rollout

    def finish_step(self, metrics: dict[str, float], t_start: float, generated: int) -> dict[str, float]:
        """Count the step and the ``generated`` tokens of all its rollouts (the token budget's unit)."""
        self.step += 1
        self.generated_tokens += generated
        metrics["tokens/cumulative"] = float(self.generated_tokens)
        metrics["loss/total"] = sum(v for k, v in metrics.items() if k.startswith("loss/"))
        metrics.update({"lr": self.scheduler.get_last_lr()[0], "time/step": time.perf_counter() - t_start})
        if self.sync_seconds is not None:
            metrics["time/weight_sync"] = self.sync_seconds
            self.sync_seconds = None
        if metrics.get("tokens/generated") and metrics.get("time/generate"):
            metrics["tokens/per_s"] = metrics["tokens/generated"] / metrics["time/generate"]
        return metrics

    # -- what collection and loss terms use ---------------------------------------------------
    def roll_out(self, problems, seed: int, n_samples: int, rounds: int,
                 inside: Callable[[list, list[Episode]], Any] | None = None, **options) -> Rollout:
        """This process's share of the step's ``problems`` (whole groups), ``n_samples`` episodes each
        of up to ``rounds`` answers, sampled at the config's temperature on the current weights.
        ``options`` go to :func:`rltf.rollout.run_episodes` (``select``, ``revision``,
        ``stop_when_correct``); ``inside(problems, episodes)`` runs while the weights are still gathered (e.g.
        span feedback from a local judge that generates with the policy) and its result is
        ``Rollout.extra``."""
        c = self.config
        lo, hi = self.dist.shard_bounds(len(problems), "prompts per step (prompts_per_step)")
        params = SamplingParams(max_new_tokens=c.max_new_tokens or self.task.max_new_tokens,
                                temperature=c.temperature, top_p=c.top_p)
        failed_before = self.feedback.stats.failed
        self.model.eval()
        t0 = time.perf_counter()
        extra = None
        with self.full_weights():
            episodes = run_episodes(self.task, problems[lo:hi], self.rollout_backend(), self.feedback, params,
                                    n_samples=n_samples, rounds=rounds, seed=seed, first_key=lo * n_samples,
                                    **options)
            t1 = time.perf_counter()
            if inside is not None:
                extra = inside(problems[lo:hi], episodes)
        return Rollout(lo, problems[lo:hi], episodes, t1 - t0, time.perf_counter() - t1, failed_before, extra)

    def feedback_failures(self, rollout: Rollout) -> float:
        """Critiques that failed (timeouts, rejected replies) since ``rollout`` began, over every process."""
        return float(self.dist.sum(float(self.feedback.stats.failed - rollout.failed_before)))

    def logprobs(self, batch: RolloutBatch, model=None) -> torch.Tensor:
        """log pi(completion_t | prompt, completion_<t) [B, T] under the policy (or ``model``)."""
        return completion_logprobs(self.model if model is None else model, batch, self.autocast_bf16,
                                   self.shared_prefix)

    def forward(self, batch: RolloutBatch, model=None, hidden: bool = False):
        """(logits [B, T, V], hidden states [B, T, H] or None) at the completion positions."""
        return completion_forward(self.model if model is None else model, batch, self.autocast_bf16,
                                  hidden=hidden, shared_prefix=self.shared_prefix)

    def chat_prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """A conversation as the prompt token ids the policy is trained on (the chat template)."""
        return self.backend.chat_prompt_ids(messages)

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

    def full_weights(self):
        """Context in which the policy's weights are whole on every process (FSDP2 and ZeRO-3 gather
        them; otherwise nothing to do): rollouts, evaluation and no-grad scoring run inside it."""
        return zero.gathered(self.engine) if self.engine is not None else full_weights(self.model)

    def rollout_backend(self) -> GenerationBackend:
        """The generation backend, holding the policy's current weights: a backend with its own copy
        (vLLM) gets the trainer's weights when an optimizer step has changed them since the last sync."""
        if self.synced_version != self.weights_version:
            t0 = time.perf_counter()
            self.backend.sync_weights(self.model)
            self.synced_version = self.weights_version
            self.sync_seconds = time.perf_counter() - t0
        return self.backend

    def idle_loss(self) -> torch.Tensor:
        """A loss that touches every trained parameter and changes no gradient (x 0): the pass of a
        micro-batch this process does not have, in lockstep training (the heads' collectives too)."""
        if not self.heads:
            return idle_loss(self.model, self.tokenizer.eos_token_id)
        loss, hidden = idle_loss(self.model, self.tokenizer.eos_token_id, hidden=True)
        for head in self.heads.values():
            loss = loss + head(hidden.float()).sum() * 0.0
        return loss

    @property
    def shared_prefix(self) -> bool:
        """Whether training forwards encode the prompts' shared prefix once (two model calls): not
        in lockstep, where every process must make the same calls and some have no shared prefix."""
        return not self.lockstep

    def judge_config(self) -> JudgeConfig:
        """The judge options of this process: ``judge_concurrency`` is the cap over ALL processes,
        so each of P processes keeps at most ceil(cap / P) requests in flight."""
        judge = JudgeConfig.from_options(self.config)
        return dataclasses.replace(judge, concurrency=max(1, -(-judge.concurrency // self.dist.world_size)))

    # -- sizes of the rollouts (backend choice, vLLM's KV cache) ------------------------------
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

    # -- the loop's hooks --------------------------------------------------------------------
    def state_root(self) -> torch.nn.Module:
        """The policy and the heads as one module: the names the optimizer state is saved under."""
        return self.root

    @property
    def total_steps(self) -> int:
        return self.config.max_steps

    def checkpoint_state(self) -> dict[str, Any]:
        return {"position": self.stream.position, "generated_tokens": self.generated_tokens,
                "last_accuracy": self.last_accuracy, "history": self.history, "eval_drafts": self.eval_drafts,
                "autocast_bf16": self.autocast_bf16,
                "extra_modules": {name: m.state_dict() for name, m in self.heads.items()},
                **(self.method_state.state_dict() if self.method_state is not None else {})}

    def _restore(self, checkpoint: Path) -> int:
        state = self.restore_common(checkpoint)
        for name, module in self.heads.items():
            module.load_state_dict(state["extra_modules"][name])
        if self.method_state is not None:
            self.method_state.load_state_dict(state)
        self.generated_tokens = state.get("generated_tokens", 0)
        self.last_accuracy = state.get("last_accuracy")
        self.history = state.get("history", [])
        self.eval_drafts = state.get("eval_drafts")
        return state["position"]

    def _last_checkpoint(self) -> str:
        found = ckpt.list_checkpoints(self.output_dir)
        return str(found[-1]) if found else "none yet"

    def card_accuracy(self) -> float | None:
        return self.last_accuracy

    def done(self) -> bool:
        budget = self.config.max_generated_tokens
        return self.step >= self.config.max_steps or bool(budget and self.generated_tokens >= budget)

    def evaluate(self, last: bool = True) -> dict[str, float]:
        """The held-out evaluation (:func:`rltf.engine.held_out.evaluate`) of the current policy; its
        item-level outcomes go to ``eval_outcomes.jsonl`` (each held-out answer's score, and which wrong
        answers each feedback fixed). ``last``: the run's last evaluation (``eval_feedback_at``)."""
        ev = held_out.evaluate(self, self.eval_drafts, last=last)
        self.last_accuracy, self.eval_drafts = ev.accuracy, ev.drafts
        if ev.outcomes and self.dist.is_main:
            record = {"step": self.step, "tokens": self.generated_tokens, **ev.outcomes}
            path = self.output_dir / OUTCOMES_FILE
            try:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, sort_keys=True) + "\n")
            except OSError as err:
                raise StorageError(f"could not write {path}: {err.strerror or err}") from err
        return ev.metrics

    def logs(self) -> list[str]:
        return [*super().logs(), OUTCOMES_FILE]

    def on_start(self, logger: MetricsLogger) -> None:
        self._tokens_seen = self.generated_tokens
        self._eval_points = [int(float(x)) for x in str(self.config.eval_at_tokens or "").replace(" ", "").split(",")
                             if x]
        if self.config.eval_at_start and self.step == 0:
            ev = self.evaluate(last=self.done())
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
            metrics.update(self.evaluate(last=last))
            self.history.append({"step": self.step, "tokens": self.generated_tokens,
                                 **{k: v for k, v in metrics.items() if k.startswith("eval/")}})

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "final_accuracy": self.last_accuracy, "history": self.history,
                "generated_tokens": self.generated_tokens, "checkpoint": self._last_checkpoint()}
