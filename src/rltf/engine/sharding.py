"""Sharded training with PyTorch FSDP2 (``fully_shard``), chosen by an accelerate FSDP config.

With ``accelerate launch --config_file recipes/accelerate/fsdp2-*.yaml`` every process holds 1/P of
the policy's parameters, gradients and AdamW state (ZeRO-3's memory: full sharding) — or, with
``fsdp_reshard_after_forward: false``, keeps the gathered parameters from forward to backward
(ZeRO-2-like: less communication, more memory). The decoder layers are sharded one by one, then the
rest of the model (embeddings, final norm, LM head) as the root.

Three rules keep sharded training equal to one process:

- Every forward/backward of the sharded policy is a collective, so every process runs the same
  number of them: a process with fewer micro-batches of a loss term runs idle passes (a one-token
  forward/backward whose loss is multiplied by 0) — :func:`idle_loss`. The shared-prompt-prefix
  forward (two model calls on some processes, one on others) is off.
- Generation, evaluation and no-grad scoring passes run on the gathered weights
  (:func:`full_weights`): every process all-gathers the parameters once and keeps them for the
  rollout, whose length differs between processes, then frees them.
- Gradients are SUMMED across processes (the divide factor is 1): each process's loss is already
  normalised by the global counts, as in data-parallel training.

Checkpoints hold the full (gathered) weights and optimizer state, written by process 0: a
checkpoint of a sharded run loads with ``from_pretrained`` like any other.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from rltf.errors import ConfigError


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class FSDPPlan:
    """How to shard, read from accelerate's FSDP config (its environment variables)."""

    reshard_after_forward: bool = True  # fsdp_reshard_after_forward: true = full shard (ZeRO-3)
    offload_params: bool = False  # fsdp_offload_params: parameters (and AdamW state) in CPU memory
    bf16: bool = False  # mixed_precision: bf16 -> parameters cast to bf16 for compute, fp32 reductions

    @classmethod
    def from_env(cls) -> "FSDPPlan | None":
        if not _env_flag("ACCELERATE_USE_FSDP", False):
            return None
        version = os.environ.get("FSDP_VERSION", "1")
        if version != "2":
            raise ConfigError(f"this accelerate config asks for FSDP version {version}; rltf shards with FSDP2: set "
                              "fsdp_version: 2 (see recipes/accelerate/fsdp2-8gpu.yaml)")
        reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().lower()
        if reshard not in ("true", "false", "full_shard", "shard_grad_op"):
            raise ConfigError(f"fsdp_reshard_after_forward: {reshard!r} is not true or false")
        return cls(reshard_after_forward=reshard in ("true", "full_shard"),
                   offload_params=_env_flag("FSDP_OFFLOAD_PARAMS", False),
                   bf16=os.environ.get("ACCELERATE_MIXED_PRECISION", "no") == "bf16")


def layer_classes(model) -> set[type]:
    """The model's decoder-layer classes: transformers names them in ``_no_split_modules``."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not found:
        raise ConfigError(f"{type(model).__name__} names no decoder layer class (_no_split_modules); FSDP needs one")
    return found


def shard_model(model, plan: FSDPPlan):
    """``fully_shard`` every decoder layer, then the root; gradients summed across processes."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs = {"reshard_after_forward": plan.reshard_after_forward}
    if plan.offload_params:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    if plan.bf16:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    classes = tuple(layer_classes(model))
    for module in list(model.modules()):
        if isinstance(module, classes):
            fully_shard(module, **kwargs)
    fully_shard(model, **kwargs)
    for module in fsdp_modules(model):
        module.set_gradient_divide_factor(1.0)  # sum, not mean: losses carry the global normalisation
        module.set_force_sum_reduction_for_comms(True)  # a plain SUM (gloo has no pre-multiplied sum)
        module._rltf_reshard_after_forward = plan.reshard_after_forward
    return model


def fsdp_modules(model) -> list:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def is_sharded(model) -> bool:
    return bool(fsdp_modules(model))


@contextmanager
def full_weights(model) -> Iterator[None]:
    """Gather the sharded parameters on every process and keep them gathered until the block ends
    (generation, evaluation, weight sync, no-grad scoring): forwards inside it do not communicate,
    so processes may run different numbers of them. A no-op for an unsharded model. Collective:
    every process enters it together."""
    modules = fsdp_modules(model)
    if not modules:
        yield
        return
    for m in modules:
        m.set_reshard_after_forward(False, recurse=False)
    for m in modules:
        m.unshard()
    try:
        yield
    finally:
        for m in modules:
            m.reshard()
            m.set_reshard_after_forward(getattr(m, "_rltf_reshard_after_forward", True), recurse=False)


def idle_loss(model, token_id: int, hidden: bool = False):
    """A one-token forward of the policy whose loss (x 0) changes no gradient: backpropagated, it
    runs the collectives of a micro-batch this process does not have.
    ``hidden``: (loss, the last hidden states) for a head trained beside the policy."""
    device = next(p.device for p in model.parameters())
    out = model(input_ids=torch.tensor([[token_id]], device=device), use_cache=False, output_hidden_states=hidden)
    loss = out.logits.float().sum() * 0.0
    return (loss, out.hidden_states[-1]) if hidden else loss


def total_grad_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """The global L2 norm of the gradients: sharded (DTensor) gradients contribute their local shards,
    summed over processes; replicated gradients (already all-reduced) count once."""
    from torch.distributed.tensor import DTensor

    sharded = torch.zeros((), dtype=torch.float64)
    replicated = torch.zeros((), dtype=torch.float64)
    group = None
    for p in params:
        g = p.grad
        if g is None:
            continue
        if isinstance(g, DTensor):
            local = g.to_local()
            sharded = sharded + local.detach().double().pow(2).sum().cpu()
            group = g.device_mesh.get_group()
        else:
            replicated = replicated + g.detach().double().pow(2).sum().cpu()
    if group is not None:
        backend = torch.distributed.get_backend(group)
        box = sharded.to("cuda" if backend == "nccl" else "cpu")
        torch.distributed.all_reduce(box, group=group)
        sharded = box.cpu()
    return (sharded + replicated).sqrt().float()


def full_state_dicts(root, optimizer) -> tuple[dict, dict]:
    """(model state, optimizer state) gathered in full on CPU (collective; complete on every process)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(root, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(root, optimizer, state: dict) -> None:
    """Restore a full optimizer state written by :func:`full_state_dicts` into the sharded optimizer."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(root, optimizer, state, options=StateDictOptions(full_state_dict=True))
