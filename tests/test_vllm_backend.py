"""The vLLM backend against the HF one: same greedy outputs and log-probs, seeds, stop strings,
weights pushed after an optimizer step equal to a fresh engine, LoRA merged, trainers on vLLM,
and the CUDA path with a mocked device. One engine on the tiny model is shared by the module."""
import copy
import json
import subprocess
import sys

import pytest
import torch

from rltf.models.backend import SamplingParams
from rltf.models.hf_backend import HFBackend
from rltf.models.vllm_backend import VLLMOptions, vllm_available
from rltf.tasks import get_task
from helpers import parity_grader  # mixed rewards for the random model

pytestmark = pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (pip install 'rltf[vllm]')")

SMALL = VLLMOptions(kv_cache_gb=0.25, max_model_len=1024)


@pytest.fixture(scope="module")
def engine(tiny):
    from rltf.models.vllm_backend import VLLMBackend

    backend = VLLMBackend(*tiny, options=SMALL)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def prompts(tiny):
    task = get_task("add2")
    hf = HFBackend(*tiny, batch_size=4)
    return [hf.chat_prompt_ids(task.messages(p)) for p in task.problems("eval", 6, seed=0)]


def greedy(n=24, **kw):
    return SamplingParams(max_new_tokens=n, temperature=0.0, **kw)


def test_greedy_tokens_and_logprobs_equal_hf(tiny, engine, prompts):
    hf = HFBackend(*tiny, batch_size=3).generate_ids(prompts, greedy())
    vl = engine.generate_ids(prompts, greedy())
    for a, b in zip(hf, vl):
        assert a.token_ids == b.token_ids and a.text == b.text and a.finish_reason == b.finish_reason
        assert b.prompt_ids and b.prompt_ids == a.prompt_ids
        assert len(b.logprobs) == len(b.token_ids)
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-4


def test_sampled_logprobs_are_raw_policy_logprobs(tiny, engine, prompts):
    """At temperature 0.7 the reported log-probs are log pi(token) under the raw logits, as the
    trainer computes them (not the tempered sampling distribution)."""
    model, _ = tiny
    gen = engine.generate_ids(prompts[:1], SamplingParams(max_new_tokens=12, temperature=0.7), seed=5)[0]
    ids = torch.tensor([gen.prompt_ids + gen.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(gen.prompt_ids) - 1:-1].float()
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(gen.token_ids)[:, None])[:, 0]
    assert torch.allclose(expected, torch.tensor(gen.logprobs), atol=1e-4)


def test_seeds_reproduce_and_do_not_depend_on_batching(engine, prompts):
    params = SamplingParams(max_new_tokens=16, temperature=1.0)
    a = engine.generate_ids(prompts, params, seed=3)
    b = engine.generate_ids(prompts, params, seed=3)
    c = engine.generate_ids(prompts, params, seed=4)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert sum(x.token_ids != y.token_ids for x, y in zip(a, c)) >= len(prompts) // 2
    # The same prompt at the same index of a smaller call draws the same sample.
    first_two = engine.generate_ids(prompts[:2], params, seed=3)
    assert [g.token_ids for g in first_two] == [g.token_ids for g in a[:2]]


def test_stop_strings_cut_like_hf(tiny, engine, prompts):
    hf = HFBackend(*tiny, batch_size=3).generate_ids(prompts, greedy(32, stop=("a", "1")))
    vl = engine.generate_ids(prompts, greedy(32, stop=("a", "1")))
    assert [g.token_ids for g in hf] == [g.token_ids for g in vl]
    assert [g.finish_reason for g in hf] == [g.finish_reason for g in vl]
    for g in vl:
        if g.finish_reason == "stop" and g.token_ids[-1] != engine.tokenizer.eos_token_id:
            assert g.text.endswith(("a", "1")) or "a" in g.text or "1" in g.text


def test_top_logprobs_match_hf(tiny, engine, prompts):
    hf = HFBackend(*tiny).generate_ids(prompts[:1], greedy(3, top_logprobs=3))[0]
    vl = engine.generate_ids(prompts[:1], greedy(3, top_logprobs=3))[0]
    assert [[t for t, _ in step] for step in hf.top_logprobs] == [[t for t, _ in step] for step in vl.top_logprobs]
    for a, b in zip(hf.top_logprobs, vl.top_logprobs):
        assert all(abs(x[1] - y[1]) < 1e-4 for x, y in zip(a, b))


def test_prompt_longer_than_engine_limit_is_a_clear_error(engine):
    from rltf.errors import ConfigError

    with pytest.raises(ConfigError, match="max_model_len"):
        engine.generate_ids([[5] * 1020], greedy(10))


def _optimizer_step(model, prompt: list[int]) -> None:
    """One real AdamW step that makes the model's greedy continuation of ``prompt`` its own first sample."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    ids = torch.tensor([prompt])
    model.train()
    loss = -torch.log_softmax(model(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).mean()
    loss.backward()
    opt.step()
    model.eval()


def test_pushed_weights_equal_a_fresh_engine(tiny, engine, prompts):
    """After an optimizer step, sync_weights makes the running engine generate exactly what a new
    engine started from the new weights generates: same tokens, bit-equal log-probs."""
    from rltf.models.vllm_backend import VLLMBackend

    model, tok = tiny
    before = engine.generate_ids(prompts, greedy())
    trained = copy.deepcopy(model)
    _optimizer_step(trained, prompts[0])
    assert not torch.equal(trained.model.embed_tokens.weight, model.model.embed_tokens.weight)
    try:
        engine.sync_weights(trained)
        pushed = engine.generate_ids(prompts, greedy())
        sampled = engine.generate_ids(prompts, SamplingParams(max_new_tokens=16, temperature=1.0), seed=9)
    finally:
        engine.sync_weights(model)  # the shared engine goes back to the fixture's weights
    fresh = VLLMBackend(trained, tok, options=SMALL)
    try:
        new = fresh.generate_ids(prompts, greedy())
        new_sampled = fresh.generate_ids(prompts, SamplingParams(max_new_tokens=16, temperature=1.0), seed=9)
    finally:
        fresh.close()
    assert [g.token_ids for g in pushed] != [g.token_ids for g in before]  # the step changed the outputs
    assert [g.token_ids for g in pushed] == [g.token_ids for g in new]
    assert [g.logprobs for g in pushed] == [g.logprobs for g in new]
    assert [g.token_ids for g in sampled] == [g.token_ids for g in new_sampled]
    hf = HFBackend(trained, tok).generate_ids(prompts, greedy())
    assert [g.token_ids for g in hf] == [g.token_ids for g in pushed]
    # and the shared engine is back on the original weights
    assert [g.token_ids for g in engine.generate_ids(prompts, greedy())] == [g.token_ids for g in before]


def test_lora_adapters_are_merged_into_the_engine_weights(tiny, engine, prompts):
    """A PEFT model's weights reach the engine with the adapters merged (the trainer's model stays
    unmerged) and generate what the PEFT model itself generates."""
    from peft import LoraConfig, get_peft_model

    from rltf.models.vllm_backend import policy_weights

    model, tok = tiny
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj",
                                                                                                     "up_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # B starts at 0; make the adapters matter
    names = dict(policy_weights(peft_model))
    assert "model.layers.0.self_attn.q_proj.weight" in names and not any("lora" in n or "base_layer" in n for n in names)
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    expected = layer.base_layer.weight + layer.get_delta_weight("default")
    assert torch.allclose(names["model.layers.0.self_attn.q_proj.weight"], expected)
    assert not layer.merged
    try:
        engine.sync_weights(peft_model)
        vl = engine.generate_ids(prompts, greedy())
    finally:
        engine.sync_weights(model)
    hf = HFBackend(peft_model, tok).generate_ids(prompts, greedy())
    assert [g.token_ids for g in vl] == [g.token_ids for g in hf]


def _grpo_config(tmp_path, **kw):
    from rltf.methods import make_config

    values = dict(model="tiny-random", task="add2", prompts_per_step=2, group_size=2, max_new_tokens=12,
                  max_steps=2, eval_every=0, eval_n=4, eval_at_start=False, output_dir=str(tmp_path),
                  backend="vllm", vllm_kv_cache_gb=0.25, vllm_max_model_len=1024, save_every=1, learning_rate=1e-2,
                  temperature=1.0)
    values.update(kw)
    return make_config(values.pop("method", "grpo"), overrides=values)


def _trainer(config, resume=None):
    from rltf.methods import build_trainer

    trainer = build_trainer(config, console=lambda s: None, resume=resume)
    trainer.task.grade = parity_grader
    return trainer


def test_grpo_on_vllm_syncs_weights_and_corrects_the_mismatch(tmp_path):
    trainer = _trainer(_grpo_config(tmp_path / "run", group_size=4, vllm_kv_cache_gb=None))
    try:
        assert trainer.backend.name == "vllm"
        # the KV cache is sized for one rollout (8 sequences of a task prompt + 12 new tokens), +25 %
        problem = trainer.task.problems("train", 1, seed=0)[0]
        rollout = 8 * (len(trainer.backend.chat_prompt_ids(trainer.task.messages(problem))) + 12)
        assert trainer.rollout_tokens() == rollout
        per_token = 2 * 2 * 1 * 32 * 4  # K and V x 2 layers x 1 KV head x head dim 32 x fp32
        assert trainer.backend.kv_cache_bytes() == (max(int(rollout * 1.25), 1024) + 256) * per_token
        start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        first = trainer.train_step()
        second = trainer.train_step()
        assert trainer.backend.weight_syncs == 1  # before the second rollout (none before the first)
        assert "time/weight_sync" in second and "time/weight_sync" not in first
        assert any(not torch.equal(start[k], v) for k, v in trainer.model.state_dict().items())
        # the sampler is vLLM: its log-probs differ from the trainer's by kernel noise only
        for m in (first, second):
            if "rl/is_mismatch_kl" in m:
                assert 0 <= m["rl/is_mismatch_kl"] < 1e-3 and abs(m["rl/is_ratio_mean"] - 1) < 1e-2
        assert any("rl/is_mismatch_kl" in m for m in (first, second))
    finally:
        trainer.backend.close()


def test_vllm_run_resumes_exactly(tmp_path):
    """2 steps straight == 1 step, kill, resume, 1 step: the engine restarts from the checkpoint's weights."""
    straight = _trainer(_grpo_config(tmp_path / "a", group_size=4))
    try:
        ref = [straight.train_step() for _ in range(2)]
    finally:
        straight.backend.close()
    assert ref[1]["loss/rl"] != 0
    first = _trainer(_grpo_config(tmp_path / "b", group_size=4, max_steps=1))
    try:
        first.train()
    finally:
        first.backend.close()
    resumed = _trainer(_grpo_config(tmp_path / "b", group_size=4), resume=str(tmp_path / "b"))
    try:
        again = resumed.train_step()
    finally:
        resumed.backend.close()
    for key in ("loss/rl", "reward/turn0", "tokens/generated", "grad_norm"):
        assert again[key] == ref[1][key], key


def test_cli_eval_on_vllm(tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "rltf", "eval", "--task", "add2", "--model", "tiny-random", "--n", "4",
                           "--max-new-tokens", "8", "--backend", "vllm", "--vllm-kv-cache-gb", "0.25",
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text())["n"] == 4
    assert "tokens/s" in proc.stdout


def test_cuda_path_with_a_mocked_device(monkeypatch, tiny):
    """Without a GPU: the engine is asked for GPU memory and sleep mode and compiled graphs, and the
    trainer's sleep/wake calls reach vLLM's sleep()/wake_up() (mocked engine)."""
    import vllm

    import rltf.models.vllm_backend as vb

    calls = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs
            calls["events"] = []

        def sleep(self, level=1):
            calls["events"].append(("sleep", level))

        def wake_up(self, tags=None):
            calls["events"].append(("wake",))

        def collective_rpc(self, method, kwargs=None):
            calls["events"].append((method, len(list(kwargs["weights_iterator"]))))

        def reset_prefix_cache(self):
            calls["events"].append(("reset",))

    monkeypatch.setattr(vllm, "LLM", FakeLLM)
    monkeypatch.setattr(vb, "_device_of", lambda model: torch.device("cuda", 0))
    backend = vb.VLLMBackend(*tiny, options=VLLMOptions(gpu_memory_utilization=0.4))
    init = calls["init"]
    assert init["gpu_memory_utilization"] == 0.4 and init["enable_sleep_mode"] is True
    assert init["enforce_eager"] is False and "kv_cache_memory_bytes" not in init
    assert init["enable_prefix_caching"] is True and init["dtype"] == torch.float32
    backend.sleep()
    backend.sleep()  # once asleep, not again
    backend.sync_weights(tiny[0])  # wakes, pushes, drops cached prefixes
    n_weights = len(list(tiny[0].named_parameters(remove_duplicate=False)))  # the tied output embedding too
    assert calls["events"] == [("sleep", 1), ("wake",), ("reload_weights", n_weights), ("reset",)]


def test_serve_on_the_vllm_engine(engine):
    """`rltf serve` answers from the vLLM engine (generation from the server's worker thread):
    greedy chat completions equal the engine's own greedy output, log-probs included."""
    import threading

    import openai

    from rltf.serve.server import make_server

    srv = make_server(engine, "tiny-random", port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1", api_key="x", max_retries=0,
                               timeout=120)
        messages = [{"role": "user", "content": "What is 12 + 30?"}]
        out = client.chat.completions.create(model="tiny-random", messages=messages, max_tokens=8, temperature=0,
                                             logprobs=True, top_logprobs=2)
        direct = engine.generate([messages], greedy(8))[0]
        assert out.choices[0].message.content == direct.text
        got = [t.logprob for t in out.choices[0].logprobs.content]
        assert len(got) == len(direct.logprobs) and max(abs(a - b) for a, b in zip(got, direct.logprobs)) < 1e-5
        two = client.chat.completions.create(model="tiny-random", messages=messages, max_tokens=8, temperature=1.0,
                                             n=2, seed=3)
        assert len(two.choices) == 2
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_default_model_greedy_outputs_agree(smol):
    """The embedded SmolLM2-135M on a fixed set of 16 few-shot add2 prompts: the two backends
    produce the same greedy tokens and text (64/64 in benchmarks/generation.py) and log-probs
    within 1e-4 (float32 kernels differ in summation order only)."""
    from rltf.models.vllm_backend import VLLMBackend

    model, tok = smol
    task = get_task("add2")
    convs = [task.messages(p) for p in task.problems("eval", 16, seed=0)]
    params = SamplingParams(max_new_tokens=48, temperature=0.0)
    hf = HFBackend(model, tok, batch_size=16).generate(convs, params)
    backend = VLLMBackend(model, tok, options=VLLMOptions(kv_cache_gb=0.5, max_model_len=1024))
    try:
        vl = backend.generate(convs, params)
    finally:
        backend.close()
    assert [g.token_ids for g in hf] == [g.token_ids for g in vl]
    assert [g.text for g in hf] == [g.text for g in vl]
    assert max(abs(a - b) for x, y in zip(hf, vl) for a, b in zip(x.logprobs, y.logprobs)) < 1e-4
