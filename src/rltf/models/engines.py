"""Which generation backend a run uses (``backend: hf | vllm | auto``), and building it."""
from __future__ import annotations

from typing import Any

import torch

from rltf.errors import ConfigError
from rltf.models.backend import AUTO_MIN_TOKENS, BACKENDS, GenerationBackend
from rltf.models.hf_backend import HFBackend
from rltf.models.vllm_backend import VLLMBackend, VLLMOptions, cpu_supported, vllm_available



def resolve_backend(name: str, expected_tokens: int | None = None) -> str:
    """``hf`` or ``vllm`` for a backend choice. ``auto``: vLLM when it is installed, the machine can
    run it (CUDA, or a CPU with AVX2 / arm64) and the job is expected to generate at least
    :data:`AUTO_MIN_TOKENS` tokens (None: unknown, counts as enough); HF otherwise. ``vllm``
    without vLLM installed is a ConfigError naming the install command."""
    if name not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "hf":
        return "hf"
    if name == "vllm":
        if not vllm_available():
            raise ConfigError("backend=vllm needs vLLM: pip install 'rltf[vllm]' (README, Install)")
        return "vllm"
    if not vllm_available() or not (torch.cuda.is_available() or cpu_supported()[0]):
        return "hf"
    return "vllm" if expected_tokens is None or expected_tokens >= AUTO_MIN_TOKENS else "hf"


def vllm_options(config: Any, kv_cache_tokens: int | None = None, dtype=None) -> VLLMOptions:
    """The engine options of a config or CLI namespace (its ``vllm_*`` fields; defaults where absent);
    ``kv_cache_tokens``: the workload the KV cache is sized for when ``vllm_kv_cache_gb`` is unset;
    ``dtype``: what the engine computes in (None: the policy's weights dtype)."""
    d = VLLMOptions()
    return VLLMOptions(kv_cache_gb=getattr(config, "vllm_kv_cache_gb", d.kv_cache_gb), kv_cache_tokens=kv_cache_tokens,
                       dtype=dtype,
                       gpu_memory_utilization=getattr(config, "vllm_gpu_memory_utilization", d.gpu_memory_utilization),
                       max_model_len=getattr(config, "vllm_max_model_len", d.max_model_len),
                       enforce_eager=getattr(config, "vllm_enforce_eager", d.enforce_eager),
                       sleep=getattr(config, "vllm_sleep", d.sleep))


def build_backend(name: str, model, tokenizer, *, expected_tokens: int | None = None, batch_size: int = 16,
                  autocast_bf16: bool = False, options: VLLMOptions | None = None, seed: int = 0) -> GenerationBackend:
    """The backend ``name`` (``auto`` resolved by :func:`resolve_backend`) generating for ``model``."""
    if resolve_backend(name, expected_tokens) == "vllm":
        return VLLMBackend(model, tokenizer, options=options, seed=seed)
    return HFBackend(model, tokenizer, batch_size=batch_size, autocast_bf16=autocast_bf16)
