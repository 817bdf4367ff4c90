"""Which precision a run trains in: ``dtype: auto`` decides by measuring this machine.

CPUs of one kind differ: one with AMX or AVX512-BF16 multiplies bf16 several times faster than
fp32, one with AVX2 only emulates bf16 about 100x slower. So on CPU ``auto`` times fp32 and bf16
matmuls at the model's own layer shape (512 tokens x hidden x intermediate) in this process and
trains with bf16 autocast (bf16 matmuls over fp32 weights, optimizer state and loss) only where
bf16 beats fp32 by :data:`MARGIN`; otherwise fp32. A CPU without the native flags is not probed
(the probe alone would take seconds). On CUDA ``auto`` keeps bf16 weights where the GPU supports
them. The choice and its reason are printed at start-up; :class:`Precision` carries both.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Callable

import torch


MARGIN = 1.5  # bf16 must beat fp32 by this factor at the model's shape to be chosen
PROBE_TOKENS = 512  # rows of the probe matmul: a micro-batch's tokens in the training forward
MIN_HIDDEN = 256  # below this hidden size the casts cost more than bf16 saves (tiny test models): fp32


@dataclasses.dataclass(frozen=True)
class Precision:
    """The resolved precision of a run's policy.

    ``weights``: parameters, gradients and optimizer state; ``autocast_bf16``: forward and backward
    matmuls in bf16 over those weights; ``reason``: one line saying why (logged at start-up)."""

    weights: torch.dtype
    autocast_bf16: bool
    reason: str

    @property
    def engine_dtype(self) -> torch.dtype:
        """What a generation engine (vLLM) computes in: bf16 where the trainer's matmuls are bf16."""
        return torch.bfloat16 if self.autocast_bf16 else self.weights

    @property
    def label(self) -> str:
        return "bf16 autocast (fp32 weights)" if self.autocast_bf16 and self.weights == torch.float32 \
            else str(self.weights).removeprefix("torch.") + (" + bf16 autocast" if self.autocast_bf16 else "")


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_native_bf16(flags: set[str] | None = None) -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX-BF16 or AVX512-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return "amx_bf16" in flags or "avx512_bf16" in flags


def matmul_tflops(dtype: torch.dtype, m: int, k: int, n: int, reps: int = 8) -> float:
    """Best-of-``reps`` TFLOP/s of an ``[m, k] @ [k, n]`` matmul in ``dtype`` on this process's threads."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(dtype)
    b = torch.randn(k, n, generator=gen).to(dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / max(best, 1e-9) / 1e12


def choose_cpu_precision(hidden: int, intermediate: int, *, native: bool | None = None,
                         measure: Callable[..., float] = matmul_tflops, margin: float = MARGIN) -> Precision:
    """fp32 weights, with bf16 autocast only where this CPU's measured bf16 matmul at the model's
    layer shape beats fp32 by ``margin``."""
    native = has_native_bf16() if native is None else native
    if not native:
        return Precision(torch.float32, False, "float32: this CPU has no native bf16 (no amx_bf16 or avx512_bf16 "
                                               "flag), where bf16 is emulated far slower than fp32")
    if hidden < MIN_HIDDEN:
        return Precision(torch.float32, False, f"float32: hidden size {hidden} < {MIN_HIDDEN}, too small for "
                                               "bf16 matmuls to pay for their casts")
    shape = (PROBE_TOKENS, hidden, intermediate)
    fp32, bf16 = measure(torch.float32, *shape), measure(torch.bfloat16, *shape)
    measured = (f"{'x'.join(map(str, shape))} matmul measured now: bf16 {bf16:.3g}, fp32 {fp32:.3g} TFLOP/s, "
                f"{bf16 / max(fp32, 1e-12):.2f}x")
    if bf16 >= margin * fp32:
        return Precision(torch.float32, True, f"bf16 autocast over fp32 weights: {measured} (>= {margin}x)")
    return Precision(torch.float32, False, f"float32: bf16 does not pay at this model's shape ({measured}, "
                                           f"< {margin}x)")


@functools.lru_cache(maxsize=8)
def _cached_cpu_choice(hidden: int, intermediate: int) -> Precision:
    return choose_cpu_precision(hidden, intermediate)


def layer_shape(model_config) -> tuple[int, int]:
    """(hidden, intermediate) of a transformers config; intermediate defaults to 4 x hidden."""
    hidden = int(getattr(model_config, "hidden_size", 0) or getattr(model_config, "n_embd", 0) or 768)
    inter = int(getattr(model_config, "intermediate_size", 0) or getattr(model_config, "n_inner", 0) or 4 * hidden)
    return hidden, inter


def resolve_precision(dtype: str | torch.dtype | None, bf16_autocast: bool, device: str,
                      model_config=None) -> Precision:
    """The precision a run's ``dtype`` and ``bf16_autocast`` settings mean on ``device``.

    An explicit dtype is kept as asked. ``auto``: on CUDA, bf16 weights where supported (else fp32);
    on CPU, fp32 weights with bf16 autocast where it measures faster (:func:`choose_cpu_precision`),
    or with autocast anyway when ``bf16_autocast`` is set."""
    from rltf.models.loading import resolve_dtype

    if dtype not in (None, "auto"):
        weights = resolve_dtype(dtype, device)
        return Precision(weights, bf16_autocast, f"{str(weights).removeprefix('torch.')} as configured"
                         + (" with bf16 autocast" if bf16_autocast else ""))
    if device.startswith("cuda"):
        weights = resolve_dtype("auto", device)
        return Precision(weights, bf16_autocast, f"{str(weights).removeprefix('torch.')} on CUDA (auto)")
    if bf16_autocast:
        return Precision(torch.float32, True, "bf16 autocast over fp32 weights as configured (bf16_autocast)")
    if model_config is None:
        return Precision(torch.float32, False, "float32 (auto, no model shape to measure at)")
    return _cached_cpu_choice(*layer_shape(model_config))
