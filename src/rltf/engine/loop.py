"""The core every rltf training run shares: optimizer and schedule, guards, checkpoints and exact
resume, and the loop with metrics logging, a progress bar and periodic saves.

:class:`TrainingRun` is the base of the engine that trains a policy with any method
(:class:`rltf.engine.engine.Engine`) and of the span reward model's SFT
(:class:`rltf.methods.reward_model.RewardModelTrainer`). A
subclass loads its model, calls :meth:`TrainingRun.setup_optimization` and, when resuming,
:meth:`TrainingRun.restore_common`, and implements :meth:`train_step` and :meth:`checkpoint_state`;
the other hooks have defaults.
"""
from __future__ import annotations

import copy
import errno
import json
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from rltf.errors import BackendError, ConfigError, NonFiniteError, RunStopped, StorageError, first_line
from rltf.engine import checkpoint as ckpt
from rltf.engine import zero
from rltf.engine.config_fields import config_to_dict
from rltf.engine.distributed import Distributed, SingleProcess
from rltf.engine.metrics_logger import MetricsLogger, NullLogger
from rltf.engine.sharding import full_state_dicts, load_optimizer_state
from rltf.models.precision import Precision, resolve_precision


def lr_lambda(warmup: int, total: int, kind: str) -> Callable[[int], float]:
    """The learning-rate factor at each optimizer step: linear warm-up over ``warmup`` steps, then
    ``kind`` (constant, linear or cosine decay) over the rest of ``total`` steps."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


def guarded_step(optimizer, max_grad_norm: float, where: str, norm_fn: Callable | None = None) -> float:
    """Clip the accumulated gradients by their global norm and take one optimizer step -> the norm.
    A non-finite norm zeroes the gradients and raises NonFiniteError (``where`` says which step).
    ``norm_fn(params)``: the global norm when gradients are sharded across processes."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    grads = [p.grad for p in params if p.grad is not None]
    if norm_fn is not None:
        norm = norm_fn(params)
    else:
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.tensor(0.0)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteError(f"non-finite gradient norm {where}")
    if max_grad_norm:
        if norm_fn is not None:  # sharded gradients: scale in place by the global factor (torch's formula)
            coef = float(torch.clamp(max_grad_norm / (norm.float() + 1e-6), max=1.0))
            for g in grads:
                g.mul_(coef)
        else:
            torch.nn.utils.clip_grads_with_norm_(params, max_grad_norm, norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


class TrainingRun(ABC):
    """Set by the subclass before :meth:`train`: ``config`` (with the optimizer, schedule, saving and
    logging fields), ``console``, ``output_dir``, ``resume_from``, ``model``, ``tokenizer``, ``citation``."""

    config: Any
    console: Callable[[str], None]
    output_dir: Path
    resume_from: Path | None
    citation: str = ""
    dist: Distributed = SingleProcess()
    sharded: bool = False  # the policy is sharded across processes (FSDP2)
    engine: Any = None  # the DeepSpeed engine (ZeRO-2/3) that owns the backward and the optimizer step
    precision: Precision  # set by the subclass from :meth:`choose_precision` once the model is loaded

    @property
    def lockstep(self) -> bool:
        """Every process must make the same forward/backward calls (FSDP2 and ZeRO communicate in them)."""
        return self.sharded or self.engine is not None

    def state_root(self) -> torch.nn.Module:
        """Every trained module as one (the names a sharded run's optimizer state is saved under)."""
        return self.model

    def setup_optimization(self, groups: list[dict[str, Any]], total_steps: int) -> None:
        """AdamW over ``groups`` and the warm-up + decay schedule over ``total_steps``; step 0."""
        c = self.config
        self.optimizer = torch.optim.AdamW(groups, lr=c.learning_rate, betas=(c.adam_beta1, c.adam_beta2),
                                           eps=c.adam_epsilon, weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lr_lambda(c.warmup_steps, total_steps, c.lr_scheduler))
        self.step = 0
        self.last_saved: Path | None = None

    def restore_common(self, checkpoint: Path) -> dict[str, Any]:
        """Optimizer, schedule, every RNG and the step from ``checkpoint``; the rest of its state is
        returned. Each process restores its own RNG states when the run had as many processes;
        otherwise every process takes the first process's (the data position is global either way)."""
        state = ckpt.load_trainer_state(checkpoint)
        written = state.get("optimizer_format", "torch")
        if written != self.optimizer_format:
            raise ConfigError(f"{checkpoint} was written by {_RUN_KIND[written]}; resume it as one "
                              f"(this run is {_RUN_KIND[self.optimizer_format]})")
        if self.engine is not None:
            if state.get("world_size", 1) != self.dist.world_size:
                raise ConfigError(f"{checkpoint} holds DeepSpeed state partitioned over {state.get('world_size')} "
                                  f"processes; resume it with as many (this run has {self.dist.world_size})")
            zero.load(self.engine, checkpoint / "deepspeed")
        elif self.sharded:
            load_optimizer_state(self.state_root(), self.optimizer, state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        per_rank = state.get("rng_per_rank") or [state["rng"]]
        if len(per_rank) == self.dist.world_size:
            ckpt.set_rng_state(per_rank[self.dist.rank])
        else:
            self.console(f"note: {checkpoint} was written by {len(per_rank)} process(es), this run has "
                         f"{self.dist.world_size}: the data position carries over, the random streams start anew")
            ckpt.set_rng_state(per_rank[0])
        self.step = state["step"]
        self.console(f"resumed from {checkpoint} at step {self.step}")
        return state

    # -- precision -------------------------------------------------------------------------------
    def choose_precision(self, model_config) -> Precision:
        """What ``dtype`` and ``bf16_autocast`` mean here (``auto`` measured on CPU, see
        :mod:`rltf.models.precision`). A resumed run keeps the choice it began with, so that it
        continues exactly; every process takes the first process's choice."""
        c = self.config
        stored = ckpt.stored_state_value(self.resume_from, "autocast_bf16") if self.resume_from else None
        if stored is not None and c.dtype == "auto" and not c.bf16_autocast and str(self.device).startswith("cpu"):
            weights = resolve_precision(c.dtype, False, str(self.device)).weights
            choice = Precision(weights, bool(stored), "as chosen when this run began; resumed runs keep it")
        else:
            choice = resolve_precision(c.dtype, c.bf16_autocast, str(self.device), model_config)
        if self.dist.enabled:
            choice = self.dist.broadcast_object(choice)
        return choice

    @property
    def autocast_bf16(self) -> bool:
        """Forward and backward matmuls in bf16 over the weights (``precision``)."""
        return self.precision.autocast_bf16

    @property
    def optimizer_format(self) -> str:
        """How this run's checkpoints hold the optimizer state: ``torch`` (a state dict), ``fsdp-full``
        (the full state of a sharded run) or ``deepspeed`` (DeepSpeed's partitioned files)."""
        return "deepspeed" if self.engine is not None else "fsdp-full" if self.sharded else "torch"

    # -- hooks ----------------------------------------------------------------------------
    @property
    @abstractmethod
    def total_steps(self) -> int:
        """Optimizer steps of the whole run."""

    @abstractmethod
    def train_step(self) -> dict[str, float]:
        """One optimizer step (or PPO's several): returns its metrics; advances ``self.step``."""

    @abstractmethod
    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint must hold besides the optimizer, the schedule, the RNGs and the step."""

    def card_config(self) -> dict[str, Any]:
        """The config as the model card reports it."""
        return config_to_dict(self.config)

    def card_accuracy(self) -> float | None:
        return None

    def done(self) -> bool:
        return self.step >= self.total_steps

    def on_start(self, logger: MetricsLogger) -> None:
        """Before the first step of this process (e.g. the evaluation of the initial policy)."""

    def after_step(self, metrics: dict[str, float], last: bool) -> None:
        """Add to a step's metrics before they are logged (e.g. a held-out evaluation)."""

    def logs(self) -> list[str]:
        """The run's JSONL logs (one record per step or evaluation, each with its ``step``): cut back
        to the checkpoint's step when a run resumes, so that nothing is logged twice."""
        return ["metrics.jsonl"]

    def save_due(self, last: bool) -> bool:
        every = self.config.save_every
        return bool(every and self.step % every == 0) or last

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "checkpoint": str(self.last_saved) if self.last_saved else None}

    # -- the loop -------------------------------------------------------------------------
    def save(self) -> Path:
        """One checkpoint, written atomically by the first process; it holds every process's RNG
        states (the processes hold the same weights and optimizer state). All processes wait for it."""
        rng_per_rank = self.dist.gather_object(ckpt.rng_state())
        model_state = optimizer_state = staging = None
        state = {"step": self.step, "world_size": self.dist.world_size, "rng_per_rank": rng_per_rank}
        if self.sharded:  # gather the shards (every process takes part), process 0 writes them
            full_model, optimizer_state = full_state_dicts(self.state_root(), self.optimizer)
            model_state = {k[len("policy."):]: v for k, v in full_model.items() if k.startswith("policy.")}
        if self.engine is not None:  # every process writes its ZeRO partition into the staged checkpoint
            staging = Path(self.dist.broadcast_object(
                str(ckpt.staging_dir(self.output_dir, self.step)) if self.dist.is_main else None))
            zero.save(self.engine, staging / "deepspeed")
            optimizer_state = {}
            with self.full_weights():  # ZeRO-3: whole weights (and value head) for process 0 to write
                if self.dist.is_main:
                    model_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
                    state.update(copy.deepcopy(self.checkpoint_state()))
        elif self.dist.is_main:
            state.update(self.checkpoint_state())
        path = None
        if self.dist.is_main:
            try:
                path = ckpt.save_checkpoint(
                    self.output_dir, self.step, self.model, self.tokenizer, self.optimizer, self.scheduler,
                    self.card_config(), state, self.card_accuracy(), keep=self.config.save_total_limit,
                    citation=self.citation, model_state=model_state, optimizer_state=optimizer_state,
                    optimizer_format=self.optimizer_format, staging=staging)
            except (OSError, RuntimeError) as err:  # torch.save's writer reports ENOSPC as a RuntimeError
                raise StorageError(f"could not write checkpoint {self.output_dir / f'checkpoint-{self.step}'}: "
                                   f"{first_line(err)}") from err
        self.last_saved = Path(self.dist.broadcast_object(str(path) if path else None))
        return self.last_saved

    def train(self) -> dict[str, Any]:
        c = self.config
        resumed = self.resume_from is not None
        main = self.dist.is_main
        if main:  # a resumed run keeps its logs up to the checkpoint; a fresh start, nothing an earlier attempt logged
            for name in self.logs():
                _truncate_metrics(self.output_dir / name, self.step if resumed else -1)
        logger = (MetricsLogger(self.output_dir, c.report_to, c.run_name, config_to_dict(c), resume=resumed)
                  if main else NullLogger())
        try:
            self.on_start(logger)
            bar = tqdm(total=self.total_steps, initial=self.step, desc=c.method, unit="step", leave=False,
                       disable=not main)
            while not self.done():
                metrics = self.train_step()
                bar.update(1)
                last = self.done()
                self.after_step(metrics, last)
                logger.log(self.step, metrics, console=self.console)
                stop = self.stop_request()
                if self.save_due(last) or stop:
                    self.console(f"saved {self.save()}")
                if stop:
                    raise RunStopped(f"{stop}; stopped at step {self.step} after saving {self.last_saved}; "
                                     f"carry on with --resume {self.output_dir}")
            bar.close()
        except OSError as err:
            if err.errno not in STORAGE_ERRNOS:
                raise
            raise StorageError(f"could not write {err.filename or 'a file of the run'}: {err.strerror}; "
                               f"{self.resume_hint()}") from err
        except (StorageError, BackendError) as err:
            raise type(err)(f"{err}; {self.resume_hint()}") from err
        finally:
            try:
                logger.close()
            except OSError:  # the same full disk again, on the buffered rest; the error above says it
                pass
        return self.summary()

    def resume_hint(self) -> str:
        """Where a failed run stands: its newest whole checkpoint (left intact) and how to carry on."""
        found = ckpt.list_checkpoints(self.output_dir) if self.output_dir.is_dir() else []
        if not found:
            return "no checkpoint was written yet; start the run again once the cause is fixed"
        return f"the last complete checkpoint {found[-1]} is intact: carry on with --resume {self.output_dir}"

    def stop_request(self) -> str | None:
        """Why the run must stop after this step (it saves a checkpoint first), or None."""
        return None


# a write that failed because of the disk, not the program: the run stops, naming the path
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}


_RUN_KIND = {"torch": "a run without FSDP or DeepSpeed", "fsdp-full": "a sharded (FSDP) run",
             "deepspeed": "a DeepSpeed ZeRO run"}


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the metric lines up to the checkpoint we resume from: a killed run may have logged later
    steps (which the resumed run logs again) and a last line cut off mid-write. ``step`` -1 (a fresh
    start in a folder a killed attempt wrote) keeps none. Replaced atomically."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if isinstance(record, dict) and record.get("step", step + 1) <= step:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
    os.replace(tmp, path)
