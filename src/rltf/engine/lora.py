"""LoRA adapters (PEFT) on a policy or a reward model, initialised under the run's seed."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from rltf.errors import ConfigError


def wrap_lora(model, config, adapter_dir: Path | None = None):
    """PEFT LoRA adapters on ``config.lora_target_modules`` (initialised under ``config.seed``),
    loaded from ``adapter_dir`` when resuming."""
    try:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    except ImportError:
        raise ConfigError("use_lora needs the peft package: pip install 'rltf[train]'") from None
    c = config
    lora = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout, task_type="CAUSAL_LM",
                      target_modules=[m.strip() for m in c.lora_target_modules.split(",") if m.strip()])
    with torch.random.fork_rng():
        torch.manual_seed(c.seed)
        model = get_peft_model(model, lora)
    if adapter_dir is not None:
        set_peft_model_state_dict(model, load_file(str(adapter_dir / "adapter_model.safetensors")))
    return model
