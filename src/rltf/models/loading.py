"""Load a policy or judge model and its tokenizer by name, Hugging Face id or local path."""
from __future__ import annotations

import re
import socket
import urllib.parse
from pathlib import Path

import torch
from huggingface_hub import constants, try_to_load_from_cache
from transformers import AutoModelForCausalLM, AutoTokenizer

from rltf.errors import ConfigError, ModelLoadError, first_line
from rltf.models.embedded import DEFAULT_MODEL, SMOLLM2_NAME, ensure_converted
from rltf.models.integrity import model_dir_damage, tokenizer_dir_damage
from rltf.models.tiny import TINY_NAME, build_tiny_model, build_tiny_tokenizer


_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}


def resolve_dtype(name: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    """``auto`` is float32 on CPU and bfloat16 on CUDA when the GPU supports it."""
    if isinstance(name, torch.dtype):
        return name
    if name in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ConfigError(f"unknown dtype {name!r}; choose one of auto, {', '.join(sorted(_DTYPES))}") from None


def resolve_device(name: str | None) -> str:
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available on this machine")
    return name


def _source(name: str) -> str:
    """Where from_pretrained should read ``name``: the converted cache for the default model."""
    if name == SMOLLM2_NAME:
        return str(ensure_converted())
    looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local and not Path(name).expanduser().exists():
        raise ModelLoadError(f"model {name!r} is not a known name ({DEFAULT_MODEL}, {TINY_NAME}), "
                             "an existing local directory, or a hub id (owner/name)")
    if looks_local:
        return str(Path(name).expanduser())
    _require_hub(name)
    return name


def _require_hub(name: str, timeout: float = 5.0) -> None:
    """A hub id loads from the local cache, or from a hub that answers within ``timeout`` seconds;
    otherwise one clear error now instead of a minute of retries and warnings."""

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"model {name!r} is not a local directory and not in the Hugging Face cache "
                             "(HF_HUB_OFFLINE is set)")
    url = urllib.parse.urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError as err:
        raise ModelLoadError(f"model {name!r} is not a local directory or in the Hugging Face cache, and the hub "
                             f"({constants.ENDPOINT}) cannot be reached: {err}") from None


def load_tokenizer(name: str = DEFAULT_MODEL):
    """Tokenizer with its chat template and a pad token; padding on the left for generation."""
    if name == TINY_NAME:
        tok = build_tiny_tokenizer()
    else:
        source = _source(name)
        _refuse_damaged(source, tokenizer_dir_damage)
        try:
            tok = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load tokenizer {name!r}: {first_line(err)}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if not getattr(tok, "chat_template", None):
        raise ModelLoadError(f"tokenizer {name!r} has no chat template; rltf poses tasks as chat messages")
    return tok


def load_model(name: str = DEFAULT_MODEL, dtype: str | torch.dtype | None = "auto", device: str | None = "auto",
               seed: int = 0, tokenizer=None):
    """A causal LM in eval mode on ``device``.

    ``name`` is ``smollm2-135m`` (embedded default), ``tiny-random`` (random 2-layer Llama, weights
    drawn under ``seed``), a local directory written by ``save_pretrained`` (an rltf checkpoint
    too), or a Hugging Face id when a hub is reachable.
    """
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if name == TINY_NAME:
        tok = tokenizer or load_tokenizer(TINY_NAME)
        model = build_tiny_model(len(tok), seed=seed, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        model = model.to(torch_dtype)
    else:
        src = _source(name)
        _refuse_damaged(src, model_dir_damage)
        try:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load model {name!r}: {first_line(err)}") from err
    model.to(device)
    model.eval()
    return model


def load_model_and_tokenizer(name: str = DEFAULT_MODEL, dtype="auto", device="auto", seed: int = 0):
    tok = load_tokenizer(name)
    return load_model(name, dtype=dtype, device=device, seed=seed, tokenizer=tok), tok


CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: Path, with_state_only: bool = True) -> list[Path]:
    """The ``checkpoint-N`` directories of a run, oldest first: those holding a trainer state, or
    with ``with_state_only`` False every one, whole or not (to name the damaged ones)."""
    found = [(int(m.group(1)), p) for p in Path(output_dir).glob("checkpoint-*")
             if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()
             and (not with_state_only or (p / "trainer_state.pt").exists())]
    return [p for _, p in sorted(found)]


def _refuse_damaged(source: str, check) -> None:
    """A local model directory whose files are missing or cut short: one error naming the file
    (from_pretrained would say something about the format, or load a half-random model)."""
    directory = Path(source)
    if directory.is_dir():
        problem = check(directory)
        if problem:
            raise ModelLoadError(f"cannot load {directory}: {problem}")
