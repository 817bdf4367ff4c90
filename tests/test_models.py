import json

import pytest
import torch

from rltf.errors import ModelLoadError
from rltf.models import load_model, resolve_dtype


def test_tiny_random_is_deterministic_and_small(tiny):
    model, tok = tiny
    again = load_model("tiny-random", tokenizer=tok)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert sum(p.numel() for p in model.parameters()) < 100_000
    assert tok.padding_side == "left" and tok.chat_template


def test_dtype_resolution():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    with pytest.raises(Exception, match="unknown dtype"):
        resolve_dtype("float8")


def test_bad_path_is_a_clear_error():
    with pytest.raises(ModelLoadError):
        load_model("./definitely/not/here")


def test_save_pretrained_round_trip(tiny, tmp_path):
    model, tok = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.slow
def test_default_model_loads_from_the_converted_cache(smol):
    from rltf.models.embedded import converted_dir

    model, tok = smol
    config = json.loads((converted_dir() / "config.json").read_text())
    assert "quantization_config" not in config
    assert model.config.num_hidden_layers == 30 and model.dtype == torch.float32
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    model.train()
    loss = model(torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])).loss
    loss.backward()  # trainable: no quantization guard left
    assert model.model.embed_tokens.weight.grad is not None


def test_backend_choice(monkeypatch):
    import rltf.models.engines as engines
    from rltf.errors import ConfigError

    monkeypatch.setattr(engines, "vllm_available", lambda: False)
    assert engines.resolve_backend("hf") == "hf"
    assert engines.resolve_backend("auto", 10**9) == "hf"
    with pytest.raises(ConfigError, match=r"pip install 'rltf\[vllm\]'"):
        engines.resolve_backend("vllm")
    with pytest.raises(ConfigError, match="one of auto, hf, vllm"):
        engines.resolve_backend("tgi")
    monkeypatch.setattr(engines, "vllm_available", lambda: True)
    monkeypatch.setattr(engines, "cpu_supported", lambda: (True, ""))
    assert engines.resolve_backend("vllm", 1) == "vllm"
    assert engines.resolve_backend("auto", engines.AUTO_MIN_TOKENS - 1) == "hf"  # the engine start would not pay
    assert engines.resolve_backend("auto", engines.AUTO_MIN_TOKENS) == "vllm"
    assert engines.resolve_backend("auto") == "vllm"  # unknown: a server, a long job
    monkeypatch.setattr(engines, "cpu_supported", lambda: (False, "no AVX2"))
    monkeypatch.setattr(engines.torch.cuda, "is_available", lambda: False)
    assert engines.resolve_backend("auto", 10**9) == "hf"


def test_backend_config_fields_are_validated():
    from rltf.errors import ConfigError
    from rltf.trainers import make_config

    cfg = make_config("grpo", overrides={"backend": "hf", "importance_sampling": "sequence_mask",
                                         "vllm_enforce_eager": "true"})
    assert cfg.backend == "hf" and cfg.importance_sampling == "sequence_mask" and cfg.vllm_enforce_eager is True
    with pytest.raises(ConfigError, match="backend must be one of"):
        make_config("grpo", overrides={"backend": "sglang"})
    with pytest.raises(ConfigError, match="importance_sampling must be one of"):
        make_config("grpo", overrides={"importance_sampling": "clip"})
    with pytest.raises(ConfigError, match="vllm_kv_cache_gb must be greater than 0"):
        make_config("grpo", overrides={"vllm_kv_cache_gb": 0})
