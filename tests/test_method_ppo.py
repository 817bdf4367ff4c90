"""span-ppo and scalar-ppo on the tiny random model: rewards sit where they should, parameters
move, failed feedback is left out, resume is bit-exact."""
import pytest
import torch

from helpers import PPO_BASE, FirstCharsCritic, collect, patch_losses
from helpers import ppo_trainer as ppo
from rltf.methods import build_trainer, make_config


def test_span_and_scalar_rewards_differ_only_in_placement(tmp_path):
    from rltf.spans import token_rewards

    span, scalar = ppo("span-ppo", tmp_path), ppo("scalar-ppo", tmp_path)
    problems = span.task.problems("train", 4)
    a, _, _ = collect(span, problems, seed=7)
    b, _, _ = collect(scalar, problems, seed=7)
    assert len(a) == len(b) == 4
    assert torch.equal(a.completion_ids, b.completion_ids)  # same samples
    for k in range(4):
        ids = a.completion_ids[k][a.completion_mask[k]].tolist()
        text = span.tokenizer.decode(ids, skip_special_tokens=True)
        expected, report = token_rewards(text, FirstCharsCritic().critique(None, None, text, None).spans,
                                         span.tokenizer, token_ids=ids)
        assert a.token_rewards[k, :len(ids)].tolist() == expected.tolist()
        n_spans = sum(len(m.ranges) * (1 if m.label == "positive" else -1) for m in report.matches)
        assert b.token_rewards[k, :len(ids) - 1].tolist() == [0.0] * (len(ids) - 1)
        assert b.token_rewards[k, len(ids) - 1] == n_spans
        assert not a.token_rewards[k, len(ids):].any() and not b.token_rewards[k, len(ids):].any()
    # whitened advantages over the batch: mean 0 over response tokens, 0 off them
    assert abs(a.advantages[a.completion_mask].mean().item()) < 1e-5
    assert not a.advantages[~a.completion_mask].any()


@pytest.mark.parametrize("method", ["span-ppo", "scalar-ppo"])
def test_one_ppo_step_moves_policy_and_value_head(method, tmp_path):
    tr = ppo(method, tmp_path, max_steps=1)
    before = [p.detach().clone() for p in tr.model.parameters()]
    head = tr.heads['value_head'].weight.detach().clone()
    metrics = tr.train_step()
    assert any(not torch.equal(x, y) for x, y in zip(before, tr.model.parameters()))
    assert not torch.equal(head, tr.heads['value_head'].weight)
    assert metrics["ppo/updates"] == 2 * 2  # 2 epochs x (4 sequences / minibatch 2)
    assert metrics["kl/per_sequence"] == pytest.approx(0.0, abs=1e-6)  # first rollout: policy == reference
    assert "ppo/policy_loss" in metrics and "ppo/value_loss" in metrics


def test_kl_is_positive_after_updates_and_beta_adapts(tmp_path):
    tr = ppo("span-ppo", tmp_path, max_steps=3, kl_target=0.01, kl_horizon=10)
    tr.train_step()
    m = tr.train_step()
    assert m["kl/per_sequence"] > 0
    assert tr.method_state.kl.value != pytest.approx(0.2)


def test_failed_feedback_is_left_out_and_too_many_failures_skip_the_update(tmp_path):
    tr = ppo("span-ppo", tmp_path, prompts_per_step=4)
    tr.feedback = FirstCharsCritic(fail_every=2)  # half fail: 2 of 4 kept (>= 0.5)
    batch, metrics, _ = collect(tr, tr.task.problems("train", 4), seed=1)
    assert len(batch) == 2 and metrics["feedback/failed"] == 2 and batch.group.tolist() == [0, 2]
    tr.feedback = FirstCharsCritic(fail_every=1)  # all fail
    before = [p.detach().clone() for p in tr.model.parameters()]
    metrics = tr.train_step()
    assert metrics["ppo/skipped"] == 1.0 and metrics["ppo/updates"] == 0
    assert all(torch.equal(x, y) for x, y in zip(before, tr.model.parameters()))


def test_ppo_stop_resume_is_bit_identical(tmp_path):
    kw = dict(max_steps=4, lr_scheduler="linear", kl_target=0.5, kl_horizon=10)
    full = ppo("span-ppo", tmp_path / "a", **kw)
    full.train()
    stopped = ppo("span-ppo", tmp_path / "b", **kw)
    stopped.train_step()
    stopped.train_step()
    ckpt = stopped.save()
    beta = stopped.method_state.kl.value
    del stopped
    cfg = make_config("span-ppo", overrides={**PPO_BASE, "output_dir": str(tmp_path / "b" / "span-ppo"), **kw})
    resumed = build_trainer(cfg, console=lambda s: None, resume=str(ckpt))
    resumed.feedback = FirstCharsCritic()
    assert resumed.step == 2 and resumed.method_state.kl.value == beta
    resumed.train()
    for (name, x), y in zip(full.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(x, y), name
    assert torch.equal(full.heads['value_head'].weight, resumed.heads['value_head'].weight)
    assert full.method_state.kl.value == resumed.method_state.kl.value


def test_ppo_with_lora_uses_base_weights_as_reference(tmp_path):
    tr = ppo("span-ppo", tmp_path, max_steps=2, use_lora=True, lora_r=4, learning_rate=5e-2)
    assert tr.ref_model is None
    tr.train_step()
    m = tr.train_step()
    assert m["kl/per_sequence"] > 0  # adapters moved the policy away from the base weights


def test_ppo_config_choices():
    from rltf.errors import ConfigError

    with pytest.raises(ConfigError, match="feedback"):
        make_config("span-ppo", overrides={"feedback": "self"})
    with pytest.raises(ConfigError, match="reward model"):
        build_trainer(make_config("span-ppo", overrides={**PPO_BASE, "feedback": "reward-model"}), console=lambda s: None)
    assert make_config("scalar-ppo").temperature == 0.6 and make_config("span-ppo").kl_coef == 0.2
    assert make_config("span-ppo").task_reward_weight == 0.0  # Text2Grad's spans only, unless asked
    with pytest.raises(ConfigError, match="task_reward_weight must be at least 0"):
        make_config("span-ppo", overrides={"task_reward_weight": -1.0})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["span-ppo"])  # scalar-ppo: the same trainer (tiny-model tests), its recipe
def test_cpu_recipe_runs_on_the_default_model_and_checkpoint_loads(method, tmp_path, smol):  # checked as a config
    """`rltf train METHOD --config recipes/cpu-fact-summary-METHOD.yaml --set max_steps=...` (shrunk)."""
    from pathlib import Path

    from rltf.cli import main

    recipe = Path(__file__).parents[1] / "recipes" / f"cpu-fact-summary-{method}.yaml"
    out = tmp_path / method
    assert main(["train", method, "--config", str(recipe), "--set", "max_steps=1", "--set", "prompts_per_step=4",
                 "--set", "mini_batch_size=4", "--set", "ppo_epochs=1", "--set", "eval_n=4",
                 "--set", f"output_dir={out}"]) == 0
    assert main(["eval", "--model", str(out / "checkpoint-1" / "model"), "--task", "fact_summary", "--n", "2"]) == 0
    readme = (out / "checkpoint-1" / "model" / "README.md").read_text()
    assert method in readme and ("Text2Grad" in readme) == (method == "span-ppo")


def test_ppo_non_finite_loss_stops_without_applying(tmp_path, monkeypatch):
    from rltf.errors import NonFiniteError

    tr = ppo("span-ppo", tmp_path, max_steps=1)
    before = [p.detach().clone() for p in tr.model.parameters()]
    patch_losses(monkeypatch, tr, lambda kind, real: lambda run, batch: (real(run, batch)[0] * float("nan"), {}))
    with pytest.raises(NonFiniteError, match="step 1"):
        tr.train_step()
    assert all(torch.equal(x, y) for x, y in zip(before, tr.model.parameters()))


@pytest.mark.parametrize("method", ["span-ppo", "scalar-ppo"])
def test_task_reward_weight_adds_the_verifiers_reward_on_the_last_token_only(method, tmp_path):
    from rltf.tasks import Score

    def trainer(weight):  # the task's reward fixed at 0.75, so the added term is known
        tr = ppo(method, tmp_path / str(weight), task_reward_weight=weight)
        grade = tr.task.score
        tr.task.score = lambda problem, text: Score(0.75, False, grade(problem, text).format_ok)
        return tr

    plain, weighted = trainer(0.0), trainer(2.0)
    problems = plain.task.problems("train", 4)
    a, _, _ = collect(plain, problems, seed=7)
    b, _, _ = collect(weighted, problems, seed=7)
    assert torch.equal(a.completion_ids, b.completion_ids)
    for k in range(len(a)):
        last = int(a.completion_mask[k].sum()) - 1
        expected = a.token_rewards[k].clone()
        expected[last] += 2.0 * 0.75  # 1.5 on the last response token, nothing anywhere else
        assert b.token_rewards[k].tolist() == expected.tolist()
