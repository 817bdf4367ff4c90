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
