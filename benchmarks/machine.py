"""What every benchmark reports about the machine it ran on: the CPU's name, whether it multiplies
bf16 natively, and the matmul peak measured in the same run (CPUs of one kind differ: figures are
compared as ratios against this peak, never quoted bare)."""
from __future__ import annotations

import platform
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively (CUDA, or a CPU with AVX512-BF16 or AMX); without it torch
    emulates them ~100x slower than fp32 and a 2048^2 probe takes minutes."""
    import torch

    if torch.cuda.is_available():
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def matmul_flops(dtype_name: str = "float32", n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n matmul in ``dtype_name`` on this machine's torch threads."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)
