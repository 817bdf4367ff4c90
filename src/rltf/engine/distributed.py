"""Data parallelism across processes started by ``accelerate launch`` (or ``torchrun``).

Every process (rank) holds a full copy of the policy and its optimizer, rolls out its own shard
of each step's prompts (a prompt's whole group, both turns of its episodes, lives on one rank),
and computes its loss normalised by the GLOBAL counts (episodes, tokens). The gradients are then
summed across ranks before the optimizer step, so P processes on a global batch apply the update
one process would apply to it; only the order of floating-point additions differs.

Why an explicit all-reduce after accumulation rather than wrapping the model in DDP: a rank may
hold no sequence of a loss term (or of a PPO minibatch) while another does, the shared-prompt-prefix
forward calls the model twice per backward, and a value head trains beside the policy; DDP's
per-forward hooks need the same sequence of forward/backward calls on every rank. Summing the
accumulated gradients once per optimizer step is what DDP computes, without that constraint.

The process group comes from accelerate (:class:`accelerate.PartialState`): NCCL on GPUs, gloo on
CPU. :class:`Distributed` with one process is a no-op, so single-process code paths are unchanged.
"""
from __future__ import annotations

import atexit
import os
import sys
from typing import Any, Callable, Iterable, TypeVar

import torch

from rltf.errors import ConfigError
from rltf.engine.sharding import FSDPPlan
from rltf.engine.zero import ZeROPlan, skip_cpu_shm_op

T = TypeVar("T")

LAUNCH_ENV = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_processes() -> int:
    """The number of processes the launcher started (1 when run as a plain command)."""
    for name in LAUNCH_ENV:
        if os.environ.get(name):
            return int(os.environ[name])
    return 1


def check_launch() -> None:
    """``accelerate launch --num_processes N`` on a machine without GPUs starts ONE process unless
    MPI is set up (accelerate's CPU launcher is mpirun): it sets MASTER_ADDR but no WORLD_SIZE.
    Say so instead of silently training in one process. A DeepSpeed config with one process is
    refused too: there is nothing to partition, and ZeRO-Offload on one device is not supported."""
    if ZeROPlan.from_env() is not None and launched_processes() == 1:
        raise ConfigError("this accelerate config asks for DeepSpeed ZeRO with one process: nothing to partition "
                          "(ZeRO-Offload on a single device is not supported); launch several processes or run "
                          "`rltf train` without the config")
    if os.environ.get("ACCELERATE_MIXED_PRECISION") and os.environ.get("MASTER_ADDR") and launched_processes() == 1:
        raise ConfigError(
            "accelerate launch asked for several processes, but on a machine without GPUs accelerate starts one "
            "process unless MPI is set up. Launch CPU processes with torchrun through accelerate: "
            "`accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml -m rltf train ...` "
            "(or add --multi_gpu --num_processes N; on CPU it runs gloo)")


class Distributed:
    """This process's place among the training processes, and the collectives the trainers use."""

    def __init__(self, device: str = "auto"):
        check_launch()
        self.world_size = launched_processes()
        self.rank, self.local_rank, self.state, self.fsdp, self.zero = 0, 0, None, None, None
        if self.world_size > 1:
            from accelerate import PartialState

            self.zero = ZeROPlan.from_env()  # an accelerate DeepSpeed config: ZeRO-2/3
            if self.zero is not None:  # before accelerate wraps the process group for DeepSpeed
                skip_cpu_shm_op()

            cpu = device == "cpu" or not torch.cuda.is_available()
            self.state = PartialState(cpu=cpu)
            if self.state.num_processes != self.world_size:
                raise ConfigError(f"the launcher started {self.world_size} processes but accelerate set up "
                                  f"{self.state.num_processes} ({self.state.distributed_type})")
            self.rank, self.local_rank = self.state.process_index, self.state.local_process_index
            atexit.register(_shut_down)  # a live process group at interpreter exit can abort the process
            self.fsdp = FSDPPlan.from_env()  # an accelerate FSDP config: shard the policy (FSDP2)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> str:
        """The device this rank trains on: its own GPU (``cuda:LOCAL_RANK``) when several GPU processes run."""
        if self.enabled and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    # -- data ------------------------------------------------------------------------------
    def shard_bounds(self, n: int, what: str = "items") -> tuple[int, int]:
        """[lo, hi) of this rank's contiguous share of ``n`` items; ``n`` must divide evenly."""
        if n % self.world_size:
            raise ConfigError(f"{n} {what} do not split evenly over {self.world_size} processes; "
                              f"use a multiple of {self.world_size}")
        per = n // self.world_size
        return self.rank * per, (self.rank + 1) * per

    def share_bounds(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's contiguous share of ``n`` items when they need not divide evenly
        (shares differ by at most one; for work no loss is normalised by, e.g. an evaluation)."""
        return n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size

    def gather(self, items: list[T]) -> list[T]:
        """Every rank's ``items`` concatenated in rank order, on every rank (picklable objects)."""
        return [x for part in self.gather_object(list(items)) for x in part]

    def gather_object(self, obj: T) -> list[T]:
        """One object from each rank, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def sum(self, value: float | int) -> float | int:
        """The sum over ranks of a number (exact for integers; rank order for floats)."""
        if not self.enabled:
            return value
        parts = self.gather_object(value)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total

    def sum_dict(self, values: dict[str, float]) -> dict[str, float]:
        """Key-wise sum over ranks (a key missing on a rank counts 0), summed in rank order."""
        if not self.enabled:
            return dict(values)
        parts = self.gather_object(dict(values))
        keys = [k for p in parts for k in p]
        out: dict[str, float] = {}
        for k in dict.fromkeys(keys):
            total = 0.0
            for p in parts:
                total = total + p.get(k, 0.0)
            out[k] = total
        return out

    # -- gradients and parameters ---------------------------------------------------------------
    def sum_gradients(self, params: Iterable[torch.nn.Parameter], bucket_bytes: int = 64 << 20) -> None:
        """All-reduce (sum) the accumulated gradients of ``params`` across ranks, in buckets of
        ``bucket_bytes`` per dtype. A parameter without a gradient on a rank contributes zeros."""
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        by_kind: dict[tuple, list[torch.Tensor]] = {}
        for p in params:
            by_kind.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for grads in by_kind.values():
            bucket: list[torch.Tensor] = []
            size = 0
            for g in grads:
                bucket.append(g)
                size += g.numel() * g.element_size()
                if size >= bucket_bytes:
                    _all_reduce_bucket(bucket)
                    bucket, size = [], 0
            if bucket:
                _all_reduce_bucket(bucket)

    def broadcast_parameters(self, modules: Iterable[torch.nn.Module]) -> None:
        """Copy rank 0's parameters and buffers to every rank (as DDP does when it wraps a model)."""
        if not self.enabled:
            return
        for module in modules:
            for t in list(module.parameters()) + list(module.buffers()):
                with torch.no_grad():
                    torch.distributed.broadcast(t.data, src=0)

    def first_error(self, error: str | None) -> str | None:
        """The first rank's error message, if any rank has one (every rank gets it, so all stop together)."""
        return next((e for e in self.gather_object(error) if e), None)

    def speaker(self, console: Callable[[str], None]) -> Callable[[str], None]:
        """``console`` on the first process, a no-op on the others: one process speaks for the run."""
        return console if self.is_main else _quiet

    def close(self) -> None:
        """Leave the process group after a FINISHED run: every process reaches this barrier with no
        collective in flight, then all tear the group down together. (At interpreter exit an
        unsynchronised teardown could abort a process whose run had succeeded; the exit hook stays
        for runs that end on an error, where waiting for the others would hang.)"""
        if self.enabled and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
            _shut_down()

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def exit_finished_process(code: int = 0) -> None:
    """End a process of a finished multi-process run: Python's exit hooks run (loggers flushed and
    closed), then the process exits without C++ static destructors. Communication libraries' threads
    torn down there have aborted a run that had already succeeded ("terminate called without an
    active exception", SIGABRT, once in CI after a ZeRO-3 run), which a launcher reports as a failure."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _quiet(*_args, **_kwargs) -> None:
    """The console of every process but the first."""


def _shut_down() -> None:
    """Leave the process group cleanly (its communication threads alive at interpreter exit can
    abort the process). No barrier: a process leaving on an error must not wait for the others,
    which then fail on the closed connection instead of waiting for a collective that never comes."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def is_dtensor(t: torch.Tensor) -> bool:
    """A sharded (FSDP2) parameter or gradient."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(t, DTensor)


def _all_reduce_bucket(grads: list[torch.Tensor]) -> None:
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


class SingleProcess(Distributed):
    """A :class:`Distributed` that ignores the launcher: one process (evaluation helpers, tests)."""

    def __init__(self):  # noqa: D401 - no super().__init__: never touches the process group
        self.world_size, self.rank, self.local_rank, self.state, self.fsdp, self.zero = 1, 0, 0, None, None, None
