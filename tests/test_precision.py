"""``dtype: auto``: bf16 autocast only where this machine's measured bf16 matmul beats fp32 by the
margin, fp32 elsewhere; the choice logged, kept across a resume, and used by every forward."""
from __future__ import annotations

import pytest
import torch

from rltf.methods import build_trainer, make_config
from rltf.models import precision as P
from tests.helpers import BASE, parity_grader


def measure_as(fp32: float, bf16: float, calls: list | None = None):
    def measure(dtype, m, k, n):
        if calls is not None:
            calls.append((dtype, m, k, n))
        return bf16 if dtype == torch.bfloat16 else fp32
    return measure


def never(*_args):
    raise AssertionError("the probe must not run here")


def test_cpu_with_native_bf16_that_measures_faster_trains_with_bf16_autocast():
    calls = []
    p = P.choose_cpu_precision(576, 1536, native=True, measure=measure_as(0.165, 0.388, calls))
    assert (p.weights, p.autocast_bf16, p.engine_dtype) == (torch.float32, True, torch.bfloat16)
    assert calls == [(torch.float32, 512, 576, 1536), (torch.bfloat16, 512, 576, 1536)]  # the model's own shape
    assert "2.35x" in p.reason and "bf16 0.388" in p.reason and "fp32 0.165" in p.reason
    assert p.label == "bf16 autocast (fp32 weights)"


def test_native_bf16_under_the_margin_stays_fp32():
    p = P.choose_cpu_precision(576, 1536, native=True, measure=measure_as(0.30, 0.44))  # 1.47x < 1.5x
    assert (p.weights, p.autocast_bf16, p.engine_dtype) == (torch.float32, False, torch.float32)
    assert "1.47x" in p.reason and "< 1.5x" in p.reason
    assert P.choose_cpu_precision(576, 1536, native=True, measure=measure_as(0.30, 0.45)).autocast_bf16  # 1.5x


def test_cpu_without_native_bf16_is_not_probed():
    p = P.choose_cpu_precision(576, 1536, native=False, measure=never)
    assert not p.autocast_bf16 and "no native bf16" in p.reason


def test_tiny_models_stay_fp32_without_probing():
    p = P.choose_cpu_precision(64, 128, native=True, measure=never)
    assert not p.autocast_bf16 and "hidden size 64" in p.reason


@pytest.mark.parametrize("flags, native", [({"avx2", "amx_bf16", "amx_tile"}, True), ({"avx512f", "avx512_bf16"}, True),
                                           ({"avx2", "fma", "avx512f"}, False), (set(), False)])
def test_native_bf16_is_read_from_the_cpu_flags(flags, native):
    assert P.has_native_bf16(flags) is native


def test_explicit_settings_are_kept_as_asked():
    expected = P.Precision(torch.float32, False, "float32 as configured")
    assert P.resolve_precision("float32", False, "cpu", None) == expected
    p = P.resolve_precision("bfloat16", False, "cpu", None)
    assert (p.weights, p.autocast_bf16) == (torch.bfloat16, False)
    p = P.resolve_precision("auto", True, "cpu", None)
    assert (p.weights, p.autocast_bf16) == (torch.float32, True)


def test_layer_shape_reads_llama_and_gpt2_style_configs():
    class Llama:
        hidden_size, intermediate_size = 576, 1536

    class GPT2:
        n_embd, n_inner = 768, None

    assert P.layer_shape(Llama) == (576, 1536)
    assert P.layer_shape(GPT2) == (768, 3072)


def test_the_probe_measures_a_real_matmul():
    assert P.matmul_tflops(torch.float32, 32, 32, 32, reps=2) > 0


def _engine(tmp_path, console=None, **kw):
    cfg = make_config("grpo", overrides={**BASE, "backend": "hf", "output_dir": str(tmp_path / "run"), "save_every": 1,
                                         **kw})
    tr = build_trainer(cfg, console=console or (lambda s: None))
    tr.task.grade = parity_grader  # mixed rewards: every step trains
    return tr


def test_the_engine_logs_its_choice_and_trains_under_it(tmp_path, monkeypatch):
    lines = []
    tr = _engine(tmp_path, console=lines.append)
    assert not tr.autocast_bf16 and any(line.startswith("precision: float32") for line in lines)
    dtypes = set()
    tr.model.lm_head.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    tr.train_step()
    assert dtypes == {torch.float32}

    bf16 = P.Precision(torch.float32, True, "measured (test)")
    monkeypatch.setattr(P, "_cached_cpu_choice", lambda hidden, inter: bf16)
    tr = _engine(tmp_path / "bf16")
    assert tr.autocast_bf16 and tr.backend.autocast_bf16
    dtypes = set()
    tr.model.lm_head.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.train_step()
    assert dtypes == {torch.bfloat16}  # generation and the training forward alike
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # master weights stay fp32
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))


def test_a_resumed_run_keeps_the_precision_it_began_with(tmp_path, monkeypatch):
    bf16 = P.Precision(torch.float32, True, "measured (test)")
    monkeypatch.setattr(P, "_cached_cpu_choice", lambda hidden, inter: bf16)
    tr = _engine(tmp_path, max_steps=1)
    tr.train()
    assert torch.load(tr.last_saved / "trainer_state.pt", weights_only=False)["autocast_bf16"] is True
    # the machine now measures otherwise (another CPU): the resumed run still trains as it began
    monkeypatch.setattr(P, "_cached_cpu_choice", lambda hidden, inter: P.Precision(torch.float32, False, "x"))
    cfg = make_config("grpo", overrides={**BASE, "backend": "hf", "output_dir": str(tmp_path / "run"), "max_steps": 2})
    lines = []
    resumed = build_trainer(cfg, console=lines.append, resume=str(tmp_path / "run"))
    assert resumed.autocast_bf16 and any("as chosen when this run began" in line for line in lines)
    # an explicit setting wins over the stored choice
    cfg = make_config("grpo", overrides={**BASE, "backend": "hf", "output_dir": str(tmp_path / "run"), "max_steps": 2,
                                         "dtype": "float32"})
    assert not build_trainer(cfg, console=lambda s: None, resume=str(tmp_path / "run")).autocast_bf16


def test_the_vllm_engine_computes_in_bf16_under_bf16_autocast(tmp_path, monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setattr(P, "_cached_cpu_choice", lambda hidden, inter: P.Precision(torch.float32, True, "test"))
    tr = _engine(tmp_path, backend="vllm")
    assert tr.backend.engine_dtype == torch.bfloat16
    assert tr.backend.llm.llm_engine.model_config.dtype == torch.bfloat16
    before = [p.detach().clone() for p in tr.model.parameters()]
    m = tr.train_step()  # generate in bf16, train over fp32 weights, sync them back into the bf16 engine
    tr.train_step()
    assert m["tokens/generated"] > 0 and tr.backend.weight_syncs >= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
