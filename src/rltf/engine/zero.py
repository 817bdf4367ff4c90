"""DeepSpeed ZeRO (stages 2 and 3), chosen by an accelerate DeepSpeed config.

With ``accelerate launch --config_file recipes/accelerate/zero2-*.yaml`` (or ``zero3-*``) the
trained modules (the policy, and a value head where the method has one) are handed to a DeepSpeed
engine: ZeRO-2 partitions the AdamW state and the gradients over the processes, ZeRO-3 the
parameters as well. The optimizer stays rltf's AdamW (DeepSpeed wraps it) and the learning-rate
schedule stays rltf's; DeepSpeed clips by the global gradient norm (the recipe's ``max_grad_norm``).

How this keeps DeepSpeed's update equal to one process's:

- Every micro-batch's loss goes through the engine (:class:`TrainedModules` calls a closure as its
  forward, so ZeRO-3's hooks see a forward of the engine's module) and ``engine.backward``. ZeRO
  reduces gradients during each backward, so every process runs the same number of passes (idle
  passes where it has fewer micro-batches: the same rule as FSDP2).
- DeepSpeed AVERAGES gradients over the processes; rltf's losses are already normalised by the
  global counts and their gradients must be SUMMED, so each loss is multiplied by the number of
  processes before ``engine.backward``. Gradient accumulation is owned by rltf: the last pass of a
  step is marked as the accumulation boundary, and ``engine.step()`` is the optimizer step.
- Rollouts, evaluation and no-grad scoring run inside :func:`gathered` (ZeRO-3: every parameter
  all-gathered once and the ZeRO hooks removed, as TRL's ``unwrap_model_for_generation`` does),
  because processes generate different numbers of tokens.

Checkpoints: the full weights (``from_pretrained`` loads them) plus DeepSpeed's own partitioned
optimizer files in ``deepspeed/`` inside the same atomically renamed ``checkpoint-N`` directory
(every process writes its partition: several machines need a shared file system, as DeepSpeed's
own checkpoints do). A ZeRO checkpoint resumes under ZeRO with the same number of processes.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from rltf.errors import ConfigError, NonFiniteError

INSTALL = ("DS_BUILD_OPS=0 pip install --no-build-isolation -c constraints.txt deepspeed "
           "(no build isolation: pip would otherwise fetch another torch to build it)")
TAG = "zero"  # the tag of DeepSpeed's files inside a checkpoint's deepspeed/ directory


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip().lower() in ("", "none", "auto") else value.strip()


@dataclass(frozen=True)
class ZeROPlan:
    """What to partition, read from accelerate's DeepSpeed config (its environment variables)."""

    stage: int = 2  # zero_stage: 2 = optimizer state + gradients partitioned; 3 = parameters too
    offload_optimizer: str = "none"  # offload_optimizer_device: cpu keeps the AdamW state in CPU memory
    offload_param: str = "none"  # offload_param_device (ZeRO-3): cpu keeps the parameters in CPU memory
    bf16: bool = False  # mixed_precision: bf16 -> bf16 weights for compute, fp32 master copy
    config_file: str | None = None  # deepspeed_config_file: a DeepSpeed JSON whose ZeRO options rltf uses
    gradient_clipping: float | None = None  # gradient_clipping: must agree with the recipe's max_grad_norm

    @classmethod
    def from_env(cls) -> "ZeROPlan | None":
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").strip().lower() not in ("1", "true", "yes"):
            return None
        config_file = _env("ACCELERATE_DEEPSPEED_CONFIG_FILE")
        stage_text = _env("ACCELERATE_DEEPSPEED_ZERO_STAGE")
        if config_file:  # the DeepSpeed file's stage wins, as in accelerate
            zero = read_config_file(config_file).get("zero_optimization", {})
            stage_text = str(zero.get("stage", stage_text or 2)) if isinstance(zero, dict) else stage_text
        stage = int(stage_text or 2)
        if stage not in (2, 3):
            raise ConfigError(f"zero_stage: {stage}: rltf trains with ZeRO stage 2 or 3 (stage 0/1: use a "
                              "MULTI_GPU config, recipes/accelerate/ddp-8gpu.yaml, which is plain data parallelism)")
        accumulation = _env("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
        if accumulation and accumulation != "1":
            raise ConfigError(f"gradient_accumulation_steps: {accumulation} in the accelerate config: rltf accumulates "
                              "every micro-batch of a step itself (the recipe's micro_batch_size); set it to 1")
        clipping = _env("ACCELERATE_GRADIENT_CLIPPING")
        return cls(stage=stage,
                   offload_optimizer=(_env("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE") or "none").lower(),
                   offload_param=(_env("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE") or "none").lower(),
                   bf16=os.environ.get("ACCELERATE_MIXED_PRECISION", "no") == "bf16",
                   config_file=config_file, gradient_clipping=float(clipping) if clipping else None)


def read_config_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"deepspeed_config_file {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise ConfigError(f"deepspeed_config_file {path} is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"deepspeed_config_file {path}: expected a JSON object")
    return data


def engine_config(plan: ZeROPlan, max_grad_norm: float) -> dict[str, Any]:
    """The DeepSpeed config rltf runs: the plan's ZeRO options (or the user's DeepSpeed file's,
    without its optimizer/scheduler, which are the recipe's) and rltf's own batch/clipping rules."""
    if plan.gradient_clipping is not None and abs(plan.gradient_clipping - float(max_grad_norm)) > 1e-12:
        raise ConfigError(f"gradient_clipping: {plan.gradient_clipping} in the accelerate config but max_grad_norm: "
                          f"{max_grad_norm} in the recipe; rltf clips with the recipe's value: drop gradient_clipping "
                          "from the accelerate config or make them agree")
    config: dict[str, Any] = {}
    if plan.config_file:
        config = read_config_file(plan.config_file)
        owned = [k for k in ("optimizer", "scheduler") if k in config]
        if owned:
            raise ConfigError(f"deepspeed_config_file {plan.config_file} sets {', '.join(owned)}: rltf's optimizer "
                              "(AdamW) and learning-rate schedule come from the recipe; remove them from the file")
        if "fp16" in config and config["fp16"].get("enabled") not in (False, "auto"):
            raise ConfigError("fp16 loss scaling is not supported by rltf; use bf16 (mixed_precision: bf16)")
    zero = dict(config.get("zero_optimization", {}))
    zero["stage"] = plan.stage
    if plan.offload_optimizer not in ("none", ""):
        zero["offload_optimizer"] = {"device": plan.offload_optimizer}
    if plan.offload_param not in ("none", ""):
        if plan.stage != 3:
            raise ConfigError("offload_param_device needs zero_stage: 3 (ZeRO-2 does not partition parameters)")
        zero["offload_param"] = {"device": plan.offload_param}
    config.update({
        "train_micro_batch_size_per_gpu": 1,  # rltf's micro-batches are its own; DeepSpeed never batches
        "gradient_accumulation_steps": 1,
        "gradient_clipping": float(max_grad_norm or 0.0),
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,  # torch's AdamW
        "zero_force_ds_cpu_optimizer": False,  # offloading keeps torch's AdamW (no compiled CPU Adam needed)
        "steps_per_print": 1 << 60,
        "wall_clock_breakdown": False,
    })
    config.pop("train_batch_size", None)
    if plan.bf16:
        config["bf16"] = {"enabled": True}
    return config


def import_deepspeed():
    try:
        import deepspeed
    except ImportError as e:
        raise ConfigError(f"this accelerate config asks for DeepSpeed, which is not installed ({e}); install it: "
                          f"{INSTALL}") from e
    return deepspeed


class TrainedModules(torch.nn.ModuleDict):
    """The modules one optimizer trains (``policy``, and e.g. ``value_head``), as the engine's module.
    Its forward runs a closure, so any loss computed from them is one forward of the engine."""

    def forward(self, fn: Callable[[], Any]) -> Any:  # noqa: D401 - the closure's result
        return fn()


def initialize(root: TrainedModules, optimizer: torch.optim.Optimizer, plan: ZeROPlan, max_grad_norm: float):
    """The DeepSpeed engine over ``root`` wrapping rltf's ``optimizer`` (the process group exists)."""
    deepspeed = import_deepspeed()
    engine, *_ = deepspeed.initialize(model=root, optimizer=optimizer, config=engine_config(plan, max_grad_norm),
                                      dist_init_required=False)
    return engine


def step(engine, where: str) -> float:
    """The optimizer step of the engine (clip by the global norm, AdamW, zero the gradients) ->
    the global gradient norm. A step DeepSpeed skipped (non-finite gradients) or a non-finite norm
    raises NonFiniteError (``where`` says which step)."""

    engine.step()
    norm = engine.get_global_grad_norm()
    norm = float(norm) if norm is not None else float("nan")
    if not engine.was_step_applied() or not math.isfinite(norm):
        raise NonFiniteError(f"non-finite gradient norm {where}")
    return norm


def skip_cpu_shm_op() -> None:
    """Without CUDA, DeepSpeed's CPU accelerator JIT-compiles a shared-memory all-reduce op (C++) when
    its process group is first wrapped (accelerate does it while setting up): ~35 s and a compiler
    at run time, for faster inference all-reduces. ZeRO's reductions go through torch.distributed
    (gloo) without it, so rltf leaves it out. Call before the process group is set up."""
    if torch.cuda.is_available():
        return
    import_deepspeed()
    # by module name: the attribute deepspeed.comm.torch is the torch package (deepspeed.comm imports it)
    ds_torch_comm = importlib.import_module("deepspeed.comm.torch")
    ds_torch_comm.build_shm_op = lambda: None


def _offload(engine):
    """ZeRO-3's parameter manager (it owns the hooks that gather parameters around each module)."""
    opt = engine.optimizer
    return getattr(opt, "parameter_offload", None) or opt


@contextmanager
def gathered(engine) -> Iterator[None]:
    """Whole parameters on every process until the block ends, with no communication inside it
    (ZeRO-3: all-gathered once, the ZeRO hooks removed, then re-partitioned and re-hooked); a no-op
    for ZeRO-2, whose parameters are whole. Collective: every process enters it together."""
    if engine is None or engine.zero_optimization_stage() < 3:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(engine.module.parameters())):
        offload = _offload(engine)
        for param in engine.module.parameters():
            param.ds_active_sub_modules.clear()
        for hook in offload.forward_hooks + offload.backward_hooks:
            hook.remove()
        offload.forward_hooks, offload.backward_hooks = [], []
        try:
            yield
        finally:
            offload._register_deepspeed_module(offload.module)


def save(engine, directory: Path) -> None:
    """DeepSpeed's partitioned training state (every process writes its partition; collective)."""
    engine.save_checkpoint(str(directory), tag=TAG, save_latest=False)


def load(engine, directory: Path) -> None:
    """Restore what :func:`save` wrote (the same number of processes and ZeRO stage)."""
    if not (directory / TAG).is_dir():
        raise ConfigError(f"{directory.parent} has no DeepSpeed state ({directory / TAG} is missing)")
    path, _ = engine.load_checkpoint(str(directory), tag=TAG, load_optimizer_states=True,
                                     load_lr_scheduler_states=False)
    if path is None:
        raise ConfigError(f"DeepSpeed could not load {directory / TAG} (written with another number of processes "
                          "or ZeRO stage?)")
