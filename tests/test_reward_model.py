"""The generative span reward model: targets, SFT, parsing failures, span P/R/F1, CLI, PPO reward source."""
import json

import pytest

from rltf.eval.reward_model import evaluate_reward_model, match_spans
from rltf.feedback.base import Span
from rltf.feedback.reward_model import SpanRewardModel
from rltf.feedback.span_parse import parse_dual_feedback
from helpers import collect
from rltf.methods.reward_model import rm_target


def record(answer, spans, critique="c", prompt="Summarize: ..."):
    return {"prompt": prompt, "answer": answer, "critique": critique, "spans": [Span.coerce(s) for s in spans]}


def test_target_lists_each_quote_once_and_round_trips():
    r = record("Tom met Tom in Boston.", [{"quote": "Tom", "label": "positive", "start": 0, "end": 3},
                                          {"quote": "Tom", "label": "positive", "start": 8, "end": 11},
                                          {"quote": "Boston", "label": "negative", "start": 15, "end": 21}])
    target = rm_target(r)
    assert json.loads(target) == {"textual_feedback": "c", "good_spans": ["Tom"], "poor_spans": ["Boston"]}
    assert parse_dual_feedback(target).spans == [Span("Tom", "positive"), Span("Boston", "negative")]


def test_match_spans_iou():
    gold = [(0, 10, "negative"), (20, 25, "negative")]
    assert match_spans([(0, 10, "negative")], gold) == 1
    assert match_spans([(0, 4, "negative")], gold) == 0  # IoU 0.4
    assert match_spans([(0, 6, "negative")], gold) == 1  # IoU 0.6
    assert match_spans([(0, 10, "positive")], gold) == 0  # label must agree
    assert match_spans([(0, 10, "negative"), (1, 10, "negative")], gold) == 1  # one-to-one


class Scripted(SpanRewardModel):
    def __init__(self, outputs):
        super().__init__(backend=None)
        self.outputs = outputs

    def generate(self, prompts, answers):
        return self.outputs[:len(prompts)]


def test_span_f1_and_parse_failures_by_hand():
    records = [
        record("Tom is a chef in Boston.", [{"quote": "Tom", "label": "positive", "start": 0, "end": 3},
                                            {"quote": "Boston", "label": "negative", "start": 17, "end": 23}]),
        record("Ann is 30.", [{"quote": "30", "label": "negative", "start": 7, "end": 9}]),
        record("Bob.", [{"quote": "Bob", "label": "positive", "start": 0, "end": 3}]),
    ]
    outputs = [
        json.dumps({"textual_feedback": "x", "good_spans": ["Tom", "chef"], "poor_spans": ["Boston", "Paris"]}),
        "{'textual_feedback': 'y', 'poor_spans': ['30']",  # cut off: lenient parse still reads it
        "I cannot help with that.",  # unparseable: counted, no spans
    ]
    res = evaluate_reward_model(Scripted(outputs), records)
    # predicted: Tom(+, tp) chef(+, fp) Boston(-, tp) Paris(-, not found: fp) 30(-, tp) -> tp 3 of 5 predicted
    # gold: Tom, Boston, 30, Bob -> recall 3/4
    assert res["precision"] == pytest.approx(3 / 5) and res["recall"] == pytest.approx(3 / 4)
    assert res["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert res["parse_failure_rate"] == pytest.approx(1 / 3) and res["parse_failures"] == {"not_json": 1}
    assert res["lenient_parse_rate"] == pytest.approx(1 / 3)
    assert res["by_label"]["positive"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_unparseable_output_gives_a_counted_failure_not_a_critique():
    rm = Scripted(["garbage", json.dumps({"textual_feedback": "ok", "poor_spans": ["x"]})])
    from rltf.tasks import get_task

    task = get_task("fact_summary")
    p = task.problems("train", 1)[0]
    out = rm.critique_many([(task, p, "x y", None), (task, p, "x y", None)])
    assert out[0].fallback == "not_json" and out[0].spans == []
    assert out[1].fallback is None and out[1].spans[0].quote == "x"
    assert rm.stats.failed == 1 and rm.stats.requested == 2


@pytest.fixture(scope="module")
def annotations(tmp_path_factory):
    from rltf.feedback import ProgrammaticCritic
    from rltf.spans.annotate import annotate
    from rltf.tasks import get_task

    task = get_task("fact_summary")
    problems = task.problems("train", 6)
    answers = [p.answer.replace(p.metadata["facts"]["city"], "Paris") for p in problems]
    records, _ = annotate(task, problems, answers, ProgrammaticCritic())
    path = tmp_path_factory.mktemp("rm") / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_sft_lowers_loss_and_checkpoint_loads(annotations, tmp_path):
    from rltf.methods import make_config
    from rltf.methods.reward_model import RewardModelTrainer

    cfg = make_config("reward-model", overrides={"model": "tiny-random", "train_data": str(annotations), "epochs": 6,
                                    "batch_size": 6, "learning_rate": 1e-2, "warmup_steps": 0,
                                    "lr_scheduler": "constant", "output_dir": str(tmp_path / "rm")})
    tr = RewardModelTrainer(cfg, console=lambda s: None)
    losses = [tr.train_step()["loss/sft"] for _ in range(6)]  # one step per epoch: the same 6 records each step
    assert losses[-1] < 0.8 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    path = tr.save()
    rm = SpanRewardModel.from_pretrained(tmp_path / "rm", max_new_tokens=8)
    assert rm.name.endswith(str(path / "model"))


def test_cli_train_reward_model_and_eval_rm(annotations, tmp_path, capsys):
    from rltf.cli import main

    out = tmp_path / "rm"
    assert main(["train", "reward-model", "--model", "tiny-random", "--train-data", str(annotations),
                 "--eval-data", str(annotations), "--set", "epochs=1", "--set", "batch_size=3",
                 "--set", "max_new_tokens=16", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "span F1" in printed and "parse failures" in printed
    result = json.loads((out / "eval_rm.json").read_text())
    assert result["n"] == 6 and 0.0 <= result["parse_failure_rate"] <= 1.0
    assert main(["eval-rm", "--model", str(out), "--data", str(annotations), "--max-new-tokens", "8",
                 "--output", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 6
    assert main(["eval-rm", "--model", str(tmp_path / "nothing"), "--data", str(annotations)]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "answer": "a", "critique": "c", "spans": [{"quote": "a", "label": "?"}]}) + "\n")
    assert main(["eval-rm", "--model", str(out), "--data", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_reward_model_as_ppo_reward_source(annotations, tmp_path, monkeypatch):
    """The reward model's spans become exactly the token rewards PPO trains on; its garbage is a counted failure."""
    from rltf.spans import token_rewards
    from rltf.methods import build_trainer, make_config
    from rltf.methods.reward_model import RewardModelTrainer

    cfg = make_config("reward-model", overrides={"model": "tiny-random", "train_data": str(annotations), "epochs": 1,
                                    "batch_size": 6, "output_dir": str(tmp_path / "rm")})
    RewardModelTrainer(cfg, console=lambda s: None).train()
    ppo = build_trainer(make_config("span-ppo", overrides={
        "model": "tiny-random", "task": "fact_summary", "feedback": "reward-model", "reward_model": str(tmp_path / "rm"),
        "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 6, "output_dir": str(tmp_path / "ppo"),
        "eval_at_start": False}), console=lambda s: None)
    assert isinstance(ppo.feedback, SpanRewardModel)
    outputs = {}  # answer -> what the stubbed reward model wrote about it

    def scripted(prompts, answers):
        replies = []
        for k, answer in enumerate(answers):
            quote = answer.strip()
            if k == 0 or not quote:
                reply = "not json at all"
            else:
                key = "poor_spans" if k % 2 else "good_spans"
                reply = json.dumps({"textual_feedback": "scripted", key: [quote]})
            outputs[answer] = reply
            replies.append(reply)
        return replies

    monkeypatch.setattr(ppo.feedback, "generate", scripted)
    batch, metrics, n = collect(ppo, ppo.task.problems("train", 2), seed=0)
    assert n == 4 and metrics["feedback/failed"] == sum(r == "not json at all" for r in outputs.values()) >= 1
    assert len(batch) == 4 - metrics["feedback/failed"] >= 2
    for b in range(len(batch)):
        ids = batch.completion_ids[b][batch.completion_mask[b]].tolist()
        text = ppo.tokenizer.decode(ids, skip_special_tokens=True)
        reply = json.loads(next(r for a, r in outputs.items() if a.strip() and a.strip() in text))
        label, quote = ("negative", reply["poor_spans"][0]) if "poor_spans" in reply else ("positive", reply["good_spans"][0])
        expected, _ = token_rewards(text, [Span(quote, label)], ppo.tokenizer, token_ids=ids)
        delta = batch.token_rewards[b, :len(ids)]
        assert delta.tolist() == expected.tolist() and not batch.token_rewards[b, len(ids):].any()
        total = delta.sum().item()
        assert (total < 0) if label == "negative" else (total > 0)


def test_word_score_list_records_are_read(tmp_path):
    from rltf.spans.annotate import read_annotations

    f = tmp_path / "ref.jsonl"
    f.write_text(json.dumps({"prompt": "p", "answer": "Tom lives in Boston", "textual_feedback": "wrong city",
                             "word_score_list": [["Tom", 1], ["lives", 0], ["in", 0], ["Boston", -1]]}) + "\n")
    (r,) = read_annotations(f)
    assert r["critique"] == "wrong city" and r["spans"] == [Span("Tom", "positive"), Span("Boston", "negative")]
    assert json.loads(rm_target(r)) == {"textual_feedback": "wrong city", "good_spans": ["Tom"],
                                        "poor_spans": ["Boston"]}


def test_lora_reward_model_trains_adapters_only(annotations, tmp_path):
    from rltf.methods import make_config
    from rltf.methods.reward_model import RewardModelTrainer

    cfg = make_config("reward-model", overrides={"model": "tiny-random", "train_data": str(annotations), "epochs": 1,
                                    "batch_size": 6, "use_lora": True, "lora_r": 4, "learning_rate": 1e-2,
                                    "output_dir": str(tmp_path / "rm")})
    tr = RewardModelTrainer(cfg, console=lambda s: None)
    named = dict(tr.model.named_parameters())
    before = {k: v.detach().clone() for k, v in named.items()}
    tr.train_step()
    changed = {k for k, v in tr.model.named_parameters() if not __import__("torch").equal(before[k], v)}
    assert changed and all("lora_" in k for k in changed)
    path = tr.save()
    assert (path / "adapter" / "adapter_model.safetensors").exists() and (path / "model" / "config.json").exists()


def test_reward_model_resume_is_exact_on_the_shared_loop(annotations, tmp_path):
    """The SFT runs on the RL trainers' core: a resumed run equals an uninterrupted one, and the
    metric lines a killed run wrote after its last checkpoint are not duplicated."""
    import shutil

    import torch

    from rltf.methods import make_config
    from rltf.methods.reward_model import RewardModelTrainer

    def config(out):
        return make_config("reward-model", overrides={"model": "tiny-random", "train_data": str(annotations), "epochs": 3,
                                         "batch_size": 3, "save_every": 1, "save_total_limit": 10,
                                         "learning_rate": 1e-3, "output_dir": str(out)})

    RewardModelTrainer(config(tmp_path / "a"), console=lambda s: None).train()
    b = tmp_path / "b"
    RewardModelTrainer(config(b), console=lambda s: None).train()
    for k in (4, 5, 6):  # as if killed after logging step 6 but with checkpoint-3 the newest
        shutil.rmtree(b / f"checkpoint-{k}")
    resumed = RewardModelTrainer(config(b), console=lambda s: None, resume=str(b))
    assert resumed.step == 3
    resumed.train()
    pa, pb = (dict(RewardModelTrainer(config(d), console=lambda s: None, resume=str(d)).model.named_parameters())
              for d in (tmp_path / "a", b))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)

    def rows(d):
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")}
                for line in (d / "metrics.jsonl").read_text().splitlines()]

    assert [r["step"] for r in rows(b)] == [1, 2, 3, 4, 5, 6] and rows(b) == rows(tmp_path / "a")
