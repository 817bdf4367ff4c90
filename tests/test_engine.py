"""Trainers on the tiny random model: parameters move, loss falls, resume is bit-exact, guards hold."""
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from helpers import BASE, collect, parity_grader, patch_losses, trainer
from rltf.errors import ConfigError, NonFiniteError
from rltf.methods import METHODS, build_trainer, make_config
from rltf.rollout import RolloutBatch
from rltf.tasks.base import Score


@pytest.mark.parametrize("method", [n for n, m in METHODS.items() if m.uses("rl")])  # PPO: test_method_ppo.py
def test_one_step_changes_trainable_parameters(method, tmp_path, monkeypatch):
    tr = trainer(method, tmp_path, max_steps=1, group_size=6)
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    before = [p.detach().clone() for p in tr.model.parameters()]
    metrics = tr.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    assert metrics["tokens/generated"] > 0 and "loss/total" in metrics
    if method == "critique-grpo":  # only prompts whose answers all failed are refined (test_methods_sdpo_critique_grpo_score.py)
        assert metrics["refine/revised"] >= 0
    elif method == "sdpo":  # one turn + critiques (test_methods_sdpo_critique_grpo_score.py)
        assert 0.0 < metrics["sd/distilled_fraction"] <= 1.0
    elif method == "revision-sft":  # one turn; wrong drafts become revision targets (test_method_revision_sft.py)
        assert metrics["sft/targets_minimal_edit"] + metrics["sft/targets_worked_solution"] > 0
    elif method != "grpo":
        assert metrics["episodes/reached_turn1"] == pytest.approx(1.0 - metrics["accuracy/turn0"])
    if "fm" in method:
        assert metrics["loss/fm"] > 0
    if method.startswith("rltf-sd"):
        assert 0.0 <= metrics["sd/masked_fraction"] <= 1.0


def test_repeated_steps_on_a_fixed_batch_lower_the_loss(tmp_path):
    tr = trainer("rltf-fm", tmp_path, learning_rate=3e-3)
    tok = tr.tokenizer
    target = tok("Check the carry in the tens digit.", add_special_tokens=False)["input_ids"]
    prompt = tr.backend.chat_prompt_ids([{"role": "user", "content": "Critique 12 + 35 = 46."}])
    batch = RolloutBatch.from_sequences([prompt] * 2, [target + [tok.eos_token_id]] * 2, kind=["fm"] * 2, turn=[0, 0],
                                        group=[0, 1], pad_id=tok.pad_token_id, advantages=[1.0, 1.0])
    losses = []
    for _ in range(8):
        tr.optimizer.zero_grad()
        losses.append(tr.accumulate(batch, n_episodes=2, scale=1.0)["loss/fm"])
        tr.optimizer.step()
    assert losses[-1] < losses[0] * 0.8
    assert all(b < a for a, b in zip(losses, losses[1:]))


@pytest.mark.parametrize("method, extra", [("rltf-sd+fm", {}), ("grpo", {"use_lora": True, "lora_r": 4}),
                                           # SDPO's EMA teacher is training state: the checkpoint must hold it
                                           ("sdpo", {"sd_weight": 0.5, "distill": "full_logits", "alpha": 0.5})])
def test_stop_resume_is_bit_identical(method, extra, tmp_path, monkeypatch):
    full = trainer(method, tmp_path / "a", max_steps=4, lr_scheduler="linear", group_size=6, **extra)
    monkeypatch.setattr(type(full.task), "grade", lambda self, p, c: parity_grader(p, c))
    initial = {k: v.detach().clone() for k, v in full.model.named_parameters()}
    full.train()
    assert any(not torch.equal(initial[k], v) for k, v in full.model.named_parameters())
    stopped = trainer(method, tmp_path / "b", max_steps=4, lr_scheduler="linear", group_size=6, **extra)
    stopped.train_step()
    stopped.train_step()
    ckpt = stopped.save()
    del stopped
    resumed = build_trainer(make_config(method, overrides={**BASE, "output_dir": str(tmp_path / "b" / method),
                                                           "max_steps": 4, "lr_scheduler": "linear",
                                                           "group_size": 6, **extra}),
                            console=lambda s: None, resume=str(ckpt))
    assert resumed.step == 2
    resumed.train()
    a = dict(full.model.named_parameters())
    b = dict(resumed.model.named_parameters())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    tr = trainer("rltf-fm", tmp_path, max_steps=3)
    tr.train_step()
    good = tr.save()
    stamp = (good / "trainer_state.pt").stat().st_mtime_ns
    before = [p.detach().clone() for p in tr.model.parameters()]
    patch_losses(monkeypatch, tr, lambda kind, real: lambda run, batch: (torch.tensor(float("nan"), requires_grad=True),
                                                                       {}))
    with pytest.raises(NonFiniteError, match="checkpoint-1"):
        tr.train_step()
    assert all(torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    assert (good / "trainer_state.pt").stat().st_mtime_ns == stamp and tr.step == 1


def test_checkpoint_is_loadable_by_transformers_and_rltf_eval(tmp_path):
    tr = trainer("rltf-fm", tmp_path, max_steps=1)
    summary = tr.train()
    ckpt = tmp_path / "rltf-fm" / "checkpoint-1"
    assert summary["checkpoint"] == str(ckpt)
    assert {"model", "trainer_state.pt", "config.yaml"} <= {p.name for p in ckpt.iterdir()}
    card = (ckpt / "model" / "README.md").read_text()
    assert "rltf-fm" in card and "task: add2" in card and "steps: 1" in card
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(ckpt / "model")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tr.model.state_dict().values()))
    r = subprocess.run([sys.executable, "-m", "rltf.cli", "eval", "--model", str(ckpt / "model"), "--task", "add2",
                        "--n", "2", "--max-new-tokens", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "rltf-fm" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 1 and "eval/accuracy" in lines[-1]


def test_config_precedence_and_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1.0e-4\ngroup_size: 4\nlambda_fm: 0.5\n")
    cfg = make_config("rltf-fm", recipe, {"group_size": "6"})
    assert (cfg.learning_rate, cfg.group_size, cfg.lambda_fm, cfg.gamma) == (1e-4, 6, 0.5, 0.1)
    assert (cfg.adam_beta1, cfg.adam_beta2, cfg.temperature) == (0.9, 0.95, 1.0)
    with pytest.raises(ConfigError, match="unknown config key"):
        make_config("grpo", recipe)  # lambda_fm is not a GRPO field
    with pytest.raises(ConfigError, match="group_size"):
        make_config("grpo", None, {"group_size": "many"})
    with pytest.raises(ConfigError, match="sd_mode"):
        make_config("rltf-sd", None, {"sd_mode": "magic"})


def test_every_config_field_has_help():
    import dataclasses

    for cls in (m.config for m in METHODS.values()):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


@pytest.mark.parametrize("recipe", sorted(__import__("pathlib").Path(__file__).parents[1].glob("recipes/*.yaml")))
def test_every_recipe_is_a_valid_config(recipe):
    if recipe.stem.endswith("reward-model"):
        assert make_config("reward-model", recipe).epochs >= 1
        return
    method = next(m for m in sorted(METHODS, key=len, reverse=True) if recipe.stem.endswith(m))
    cfg = make_config(method, recipe)
    assert cfg.method == method and cfg.max_steps >= 1


def test_shared_prefix_forward_matches_plain_forward_in_value_and_gradient(tiny, monkeypatch):
    from rltf.engine.forward import completion_logprobs

    model, tok = tiny
    prefix = list(range(5, 45))
    batch = RolloutBatch.from_sequences([prefix + [50, 51, 52], prefix + [70], prefix + [90, 91]],
                                        [[60, 61, 62, 63], [80, 81], [92]], kind=["rl"] * 3, turn=[0] * 3,
                                        group=[0, 1, 2], pad_id=tok.pad_token_id, advantages=[1.0, -0.5, 2.0])
    results = []
    for min_prefix in (8, 10_000):  # with and without the shared-prefix path
        assert (batch.model_inputs(min_prefix).prefix_ids is not None) == (min_prefix == 8)
        model.zero_grad()
        monkeypatch.setattr(RolloutBatch, "model_inputs", lambda self, m=min_prefix, f=RolloutBatch.model_inputs: f(self, m))
        logp = completion_logprobs(model, batch)
        monkeypatch.undo()
        (-(logp * batch.completion_mask).sum()).backward()
        results.append((logp.detach()[batch.completion_mask], [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = results
    assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(ga, gb))


def test_generated_token_budget_stops_training(tmp_path):
    tr = trainer("grpo", tmp_path, max_steps=50, max_generated_tokens=60)
    summary = tr.train()
    assert summary["generated_tokens"] >= 60 and summary["step"] < 50
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    cumulative = [r["tokens/cumulative"] for r in rows if "tokens/cumulative" in r]
    assert cumulative[-1] >= 60 > cumulative[-2]  # stopped at the first step that spent the budget


def test_tensorboard_logging_and_unknown_logger(tmp_path):
    tr = trainer("grpo", tmp_path, max_steps=1, report_to="tensorboard")
    tr.train()
    assert list((tmp_path / "grpo" / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(ConfigError, match="unknown logger"):
        trainer("grpo", tmp_path / "x", max_steps=1, report_to="mlflowz").train()


def test_periodic_eval_with_k_round_self_critique(tmp_path):
    tr = trainer("rltf-fm", tmp_path, max_steps=2, eval_every=1, eval_rounds=2)
    tr.train()
    rows = [json.loads(x) for x in (tmp_path / "rltf-fm" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [1, 2]
    assert all("eval/self_critique_round2" in r for r in evals)
    assert all(r["time/eval"] > 0 for r in evals) and not any("time/eval" in r for r in rows if r not in evals)


class FailingJudge:
    """A feedback provider whose every critique is a fallback (as when a judge times out)."""

    name = "judge:down"

    def __init__(self):
        from rltf.feedback.base import FeedbackStats

        self.stats = FeedbackStats()

    def critique_many(self, items):
        from rltf.feedback.base import INCORRECT_TEXT, Critique

        for _ in items:
            self.stats.count("timeout")
        return [Critique(INCORRECT_TEXT, [], source=self.name, fallback="timeout") for _ in items]


@pytest.mark.parametrize("keep", [False, True])
def test_fm_leaves_fallback_critiques_out_unless_asked(tmp_path, keep):
    tr = trainer("rltf-fm", tmp_path, fm_train_on_fallback=keep)
    tr.feedback = FailingJudge()
    batch, metrics, n = collect(tr, tr.task.problems("train", 2), seed=0)
    revised = round(metrics["episodes/reached_turn1"] * n)
    assert revised > 0
    if keep:
        assert batch.kind.count("fm") == revised and metrics["fm/fallback_critiques"] == 0
    else:
        assert "fm" not in batch.kind and metrics["fm/fallback_critiques"] == revised


def _grads(tr, batch, n_episodes):
    tr.optimizer.zero_grad(set_to_none=True)
    tr.accumulate(batch, n_episodes, 1.0)
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in tr.model.parameters()]


@pytest.mark.parametrize("aggregation,kl_coef", [("sum", 0.0), ("seq-mean-token-mean", 0.0), ("token-mean", 0.0),
                                                 ("sum", 0.5), ("token-mean", 0.5)])
def test_zero_advantage_skip_is_exact_in_every_mode(tmp_path, monkeypatch, aggregation, kl_coef):
    from rltf.algorithms import zero_advantage_skip_is_exact

    tr = trainer("rltf-sd", tmp_path, group_size=4, loss_aggregation=aggregation, kl_coef=kl_coef,
                 micro_batch_size=3, temperature=1.0)
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    collected = tr.method.collect(tr, tr.task.problems("train", 2), seed=3)  # every row, none left out
    full, n = collected.batch, collected.episodes
    for kind in ("rl", "sd"):  # every other sequence gets an advantage of exactly 0, the rest a non-zero one
        rows = [b for b, k in enumerate(full.kind) if k == kind]
        for k, b in enumerate(rows):
            seq_adv = full.advantages[b, 0].item()
            full.advantages[b] = full.completion_mask[b] * (0.0 if k % 2 else (seq_adv or 0.5))
    nonzero = (full.advantages != 0).any(dim=1)
    assert sum(1 for b, k in enumerate(full.kind) if k == "rl" and not nonzero[b]) >= 2
    monkeypatch.undo()
    with torch.no_grad():  # move the policy off the reference, or the KL term has no gradient at all
        gen = torch.Generator().manual_seed(0)
        for p in tr.model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    kept = tr.drop_zero_advantage(full)
    reference, applied = _grads(tr, full, n), _grads(tr, kept, n)
    for a, b in zip(reference, applied):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    forced = full.select([b for b, k in enumerate(full.kind) if nonzero[b] or k not in ("rl", "sd")])
    changed = any(not torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(reference, _grads(tr, forced, n)))
    assert changed == (not zero_advantage_skip_is_exact(aggregation, kl_coef))  # the rule is needed exactly there


def test_generated_tokens_count_every_rollout_of_a_step(tmp_path, monkeypatch):
    tr = trainer("grpo", tmp_path, gradient_accumulation_steps=2, max_steps=1)
    counts = []
    original = tr.method.collect

    def counting(run, problems, seed):
        collected = original(run, problems, seed)
        counts.append(collected.metrics["tokens/generated"])
        return collected

    monkeypatch.setattr(tr, "method", dataclasses.replace(tr.method, collect=counting))
    tr.train_step()
    assert len(counts) == 2 and tr.generated_tokens == sum(counts)
    with pytest.raises(ConfigError, match="unknown config key.*gradient_accumulation_steps"):
        make_config("span-ppo", overrides={"gradient_accumulation_steps": 2})  # PPO steps once per minibatch


def test_lr_schedule_by_hand():
    import math

    from rltf.engine.loop import lr_lambda

    f = lr_lambda(2, 6, "linear")  # warm-up 0.5, 1.0, then decay over 4 steps
    assert [f(s) for s in range(7)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    g = lr_lambda(0, 4, "cosine")
    assert [round(g(s), 6) for s in range(5)] == [1.0, round(0.5 * (1 + math.cos(math.pi / 4)), 6), 0.5,
                                                  round(0.5 * (1 + math.cos(3 * math.pi / 4)), 6), 0.0]
    assert lr_lambda(3, 10, "constant")(7) == 1.0


def test_item_level_revision_outcomes_are_logged_and_reproduce_the_discordant_pairs(tmp_path, monkeypatch):
    """eval_outcomes.jsonl: at each evaluation, which held-out answers (the policy's and the initial
    policy's drafts) each feedback kind fixed or handed back verbatim; the McNemar pairs recomputed
    from the items equal the logged counts; a resumed run logs no evaluation twice."""
    from rltf.eval.compare_stats import item_level_pairs

    kw = dict(eval_feedback="critic,correctness", eval_drafts=True, eval_at_start=True, eval_every=1,
              eval_n=8, max_steps=2, save_every=1)
    tr = trainer("grpo", tmp_path, **kw)
    # right on the problems whose id ends in an even digit, whatever the answer: wrong answers at every evaluation
    # (the random model revises none of them: the fixes' bookkeeping is tested in tests/test_compare_report.py)
    def grade(self, p, c):
        good = int(p.id[-1]) % 2 == 0
        return Score(float(good), good, True, "", None)

    monkeypatch.setattr(type(tr.task), "grade", grade)
    tr.train()
    run = tmp_path / "grpo"
    records = [json.loads(x) for x in (run / "eval_outcomes.jsonl").read_text().splitlines()]
    metrics = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if "eval/accuracy" in r}
    assert [r["step"] for r in records] == sorted(metrics) == [0, 1, 2]
    for r in records:
        m = metrics[r["step"]]
        for revised, prefix in (("own", ""), ("drafts", "draft_")):
            for outcome, only in (("fixed", "fixed_only"), ("verbatim", "verbatim_only")):
                a, b, n = item_level_pairs(r, revised, outcome)
                assert n == m[f"eval/{prefix}wrong_first/critic"]
                if n:
                    assert (a, b) == (m[f"eval/{prefix}{only}/critic"], m[f"eval/{prefix}{only}/correctness"])
                    fixed = len(r[revised]["critic"][outcome])
                    key = "fix_rate" if outcome == "fixed" else "verbatim"
                    assert fixed == round(m[f"eval/{prefix}{key}/critic"] * n)
    assert all(r["own"]["critic"]["wrong"] for r in records)  # the checks above ran on wrong answers
    assert records[0]["own"] == records[0]["drafts"]  # before step 1 the drafts are the policy's answers
    for r in records:  # each held-out item's first answer: right or not, as the accuracy and the revisions say
        first, m = r["first"], metrics[r["step"]]
        assert len(first) == 8 and sum(v["correct"] for v in first.values()) == round(m["eval/accuracy"] * 8)
        assert sorted(i for i, v in first.items() if not v["correct"]) == sorted(r["own"]["critic"]["wrong"])
        assert all(v["reward"] == (1.0 if v["correct"] else 0.0) for v in first.values())  # the parity grader's
    assert set(records[2]["drafts"]["critic"]["wrong"]) == set(records[0]["own"]["critic"]["wrong"])
    # resume from step 1: the step-2 evaluation is logged once, not twice
    resumed = build_trainer(make_config("grpo", overrides={**BASE, **kw, "output_dir": str(run)}),
                            console=lambda s: None, resume=str(run / "checkpoint-1"))
    resumed.train()
    steps = [json.loads(x)["step"] for x in (run / "eval_outcomes.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2]


def test_a_run_without_revision_evaluations_still_records_each_items_first_answer(tmp_path, monkeypatch):
    """Without eval_feedback, eval_outcomes.jsonl holds only "first": what item-by-item tests between
    methods need (rltf.eval.item_tests)."""
    tr = trainer("grpo", tmp_path, eval_at_start=True, eval_every=1, eval_n=6, max_steps=1)
    monkeypatch.setattr(type(tr.task), "grade", lambda self, p, c: parity_grader(p, c))
    tr.train()
    records = [json.loads(x) for x in (tmp_path / "grpo" / "eval_outcomes.jsonl").read_text().splitlines()]
    assert [sorted(r) for r in records] == [["first", "step", "tokens"]] * 2
    assert all(len(r["first"]) == 6 and all(i.startswith("add2/") for i in r["first"]) for r in records)


def test_a_fresh_start_drops_what_a_killed_earlier_attempt_logged_in_its_folder(tmp_path, monkeypatch):
    """A run started again from step 0 (killed before its first checkpoint) in the same folder: its
    logs hold only its own records, so no stale evaluation is read as one of its points."""
    run = tmp_path / "grpo"
    run.mkdir()
    stale = {"step": 5, "tokens": 999, "first": {"add2/0": {"correct": True, "reward": 1.0}}}
    (run / "eval_outcomes.jsonl").write_text(json.dumps({**stale, "step": 0}) + "\n" + json.dumps(stale) + "\n")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 5, "eval/accuracy": 1.0}) + "\n")
    tr = trainer("grpo", tmp_path, eval_at_start=True, eval_every=1, eval_n=6, max_steps=1)
    monkeypatch.setattr(type(tr.task), "grade", lambda self, p, c: parity_grader(p, c))
    tr.train()
    records = [json.loads(x) for x in (run / "eval_outcomes.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1]
    assert all(len(r["first"]) == 6 for r in records)  # the stale record had one item
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_eval_feedback_at_last_revises_only_at_the_last_evaluation_and_still_records_the_drafts(tmp_path, monkeypatch):
    """eval_feedback_at=last: the evaluations before the last measure single-turn accuracy only; the last
    one revises the policy's wrong answers and the initial policy's drafts (recorded at step 0)."""
    kw = dict(eval_feedback="critic,correctness", eval_drafts=True, eval_at_start=True, eval_every=1,
              eval_n=8, max_steps=2, eval_feedback_at="last")
    tr = trainer("grpo", tmp_path, **kw)
    # wrong on the problems whose id ends in an odd digit, whatever the answer: every evaluation has wrong answers
    monkeypatch.setattr(type(tr.task), "grade", lambda self, p, c: Score(float(int(p.id[-1]) % 2 == 0),
                                                                          int(p.id[-1]) % 2 == 0, True, "id", None))
    tr.train()
    run = tmp_path / "grpo"
    records = {r["step"]: r for r in map(json.loads, (run / "eval_outcomes.jsonl").read_text().splitlines())}
    metrics = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if "eval/accuracy" in r}
    assert sorted(records) == sorted(metrics) == [0, 1, 2]
    assert [sorted(records[s]) for s in (0, 1)] == [["first", "step", "tokens"]] * 2
    assert not any(k.startswith(("eval/fix_rate", "eval/draft_")) for s in (0, 1) for k in metrics[s])
    last = records[2]
    assert {"own", "drafts"} <= set(last) and "eval/revision_use" in metrics[2]
    initial_wrong = sorted(i for i, v in records[0]["first"].items() if not v["correct"])
    assert sorted(last["drafts"]["critic"]["wrong"]) == initial_wrong  # the drafts are the step-0 answers
    assert metrics[2]["eval/draft_wrong_first/critic"] == len(initial_wrong) > 0
