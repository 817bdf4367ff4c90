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
    from rltf.methods import make_config

    cfg = make_config("grpo", overrides={"backend": "hf", "importance_sampling": "sequence_mask",
                                         "vllm_enforce_eager": "true"})
    assert cfg.backend == "hf" and cfg.importance_sampling == "sequence_mask" and cfg.vllm_enforce_eager is True
    with pytest.raises(ConfigError, match="backend must be one of"):
        make_config("grpo", overrides={"backend": "sglang"})
    with pytest.raises(ConfigError, match="importance_sampling must be one of"):
        make_config("grpo", overrides={"importance_sampling": "clip"})
    with pytest.raises(ConfigError, match="vllm_kv_cache_gb must be greater than 0"):
        make_config("grpo", overrides={"vllm_kv_cache_gb": 0})


def test_hf_samples_do_not_depend_on_the_batch(tiny):
    """Each prompt is sampled under request_seed(seed, key): the second half of a call, sampled alone
    with its keys, gives the same tokens (what a second training process samples)."""
    from rltf.models.backend import SamplingParams
    from rltf.models.hf_backend import HFBackend

    model, tok = tiny
    backend = HFBackend(model, tok, batch_size=3)
    convs = [[{"role": "user", "content": f"What is {a} plus {a + 3}?"}] for a in range(6)]
    params = SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.9)
    whole = backend.generate(convs, params, seed=11)
    half = backend.generate(convs[3:], params, seed=11, keys=[3, 4, 5])
    assert [g.token_ids for g in whole[3:]] == [g.token_ids for g in half]
    assert [g.token_ids for g in whole[:3]] != [g.token_ids for g in half]  # different keys, different draws
    again = backend.generate(convs, params, seed=11)
    assert [g.token_ids for g in again] == [g.token_ids for g in whole]
    other = backend.generate(convs, params, seed=12)
    assert [g.token_ids for g in other] != [g.token_ids for g in whole]
    with pytest.raises(ValueError, match="2 keys for 6 prompts"):
        backend.generate(convs, params, seed=11, keys=[0, 1])


def test_keyed_sampler_applies_temperature_and_top_p_by_hand():
    """Logits [3, 2, 1, -9]: probabilities at T=1 ~ [.665, .245, .090, 0]; top-p 0.8 keeps the two
    most likely tokens (mass .665 < .8, then .91); the draws follow p and never leave the nucleus."""
    from rltf.models.hf_backend import KeyedSampler

    logits = torch.tensor([[3.0, 2.0, 1.0, -9.0]]).repeat(4000, 1)
    out = KeyedSampler(range(4000), temperature=1.0, top_p=0.8, device="cpu")(None, logits)
    picks = out.argmax(dim=1)
    assert torch.isinf(out).sum(dim=1).eq(3).all() and out.max(dim=1).values.eq(0).all()  # one-hot in log space
    assert set(picks.tolist()) == {0, 1}
    share = (picks == 0).float().mean().item()
    assert share == pytest.approx(0.665 / (0.665 + 0.245), abs=0.03)
    cold = KeyedSampler(range(4000), temperature=0.25, top_p=1.0, device="cpu")(None, logits).argmax(dim=1)
    # T=0.25: logits x4 -> p(0) = e^12 / (e^12 + e^8 + e^4) = 0.982
    assert (cold == 0).float().mean().item() == pytest.approx(0.982, abs=0.01)
