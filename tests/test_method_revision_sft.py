"""The feedback-use warm start (revision-sft): its rows (the revision prompt with the critique -> the
task's smallest correct edit of the policy's own wrong draft), its control, its loss by hand, its
anchor, and that it trains and resumes; on add2 and on the constraint task."""
import subprocess
import sys

import pytest
import torch

from helpers import trainer
from rltf.models.backend import Generation
from rltf.tasks import get_task


class DraftBackend:
    """A scripted policy: answers each question with a fixed draft (``drafts[k % len]`` for the k-th answer)."""

    name = "scripted"

    def __init__(self, tokenizer, drafts):
        self.tokenizer, self.drafts, self.calls = tokenizer, drafts, 0

    def generate(self, conversations, params, seed=0, keys=None):
        out = []
        for _ in conversations:
            text = self.drafts[self.calls % len(self.drafts)]
            self.calls += 1
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Generation(text, ids, [-1.0] * len(ids), [1, 2, 3], "stop"))
        return out

    def chat_prompt_ids(self, messages):
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)

    def sleep(self):
        pass


def _rows(tr, monkeypatch, drafts, problems):
    backend = DraftBackend(tr.tokenizer, drafts)
    monkeypatch.setattr(tr, "rollout_backend", lambda: backend)
    collected = tr.method.collect(tr, problems, 0)
    batch = collected.batch
    decode = lambda ids, mask: tr.tokenizer.decode(ids[mask], skip_special_tokens=True)  # noqa: E731
    rows = [(batch.kind[b], decode(batch.prompt_ids[b], batch.prompt_mask[b]),
             decode(batch.completion_ids[b], batch.completion_mask[b])) for b in range(len(batch))]
    return rows, collected


def test_add2_rows_are_the_critique_prompt_and_the_smallest_correct_edit(tmp_path, monkeypatch):
    tr = trainer("revision-sft", tmp_path, group_size=2, prompts_per_step=1)
    (p,) = tr.task.problems("train", 1)
    a, b = map(int, p.question.split("Calculate ")[1].rstrip(".").split(" + "))
    wrong = f"{a} + {b} = {int(p.answer) + 10}.\n\\boxed{{{int(p.answer) + 10}}}"
    rows, collected = _rows(tr, monkeypatch, [wrong, tr.task.worked_solution(p)], [p])
    assert collected.episodes == 1 and collected.metrics["sft/targets_minimal_edit"] == 1  # the right draft is not trained
    ((kind, prompt, target),) = rows
    assert kind == "sft" and "Expert critique" in prompt and wrong.split("\n")[0] in prompt
    assert "digit" in prompt or "step" in prompt  # the critic's critique, which does not state the answer
    assert p.answer not in prompt.split("Expert critique")[1]
    assert target == f"{a} + {b} = {p.answer}.\n\\boxed{{{p.answer}}}"  # the draft's wording, its result fixed
    # worked-solution targets, and the control: the same draft and target, "incorrect" in the context
    tr = trainer("revision-sft", tmp_path / "ws", group_size=1, prompts_per_step=1, targets="worked_solution")
    rows, _ = _rows(tr, monkeypatch, [wrong], [p])
    assert rows[0][2] == tr.task.worked_solution(p).strip()
    control = trainer("revision-sft", tmp_path / "control", group_size=1, prompts_per_step=1, feedback="correctness")
    rows_c, _ = _rows(control, monkeypatch, [wrong], [p])
    assert "Your previous attempt was incorrect." in rows_c[0][1] and rows_c[0][2] == target


def test_constraint_rows_remove_exactly_the_violations_the_critic_names(tmp_path, monkeypatch):
    task = get_task("constraints1?kinds=punctuation:no_comma")
    tr = trainer("revision-sft", tmp_path, task="constraints1?kinds=punctuation:no_comma", group_size=2,
                 prompts_per_step=1, max_new_tokens=32)
    (p,) = task.problems("train", 1)
    draft = "Milk, eggs, and bread are all I need."
    rows, collected = _rows(tr, monkeypatch, [draft, draft], [p])
    assert collected.metrics["sft/drafts_wrong"] == 1  # the same draft twice is one row
    ((kind, prompt, target),) = rows
    assert "2 commas (after 'Milk' and 'eggs')" in prompt and target == "Milk eggs and bread are all I need."


def test_loss_by_hand_anchor_rows_and_fallback_critiques(tmp_path, monkeypatch):
    from rltf.algorithms import gather_logprobs
    from rltf.feedback.base import INCORRECT_TEXT, Critique, FeedbackStats

    tr = trainer("revision-sft", tmp_path, group_size=2, prompts_per_step=2, first_turn_kl=0.2)
    problems = tr.task.problems("train", 2)
    rows, collected = _rows(tr, monkeypatch, ["\\boxed{0}", "no answer at all"], problems)
    kinds = collected.batch.kind
    assert kinds.count("sft") == collected.episodes == 4 and kinds.count("rl") == 4  # a KL row per draft
    assert collected.metrics["sft/targets_worked_solution"] == 4  # no steps to fix: the worked solution
    sft = collected.batch.of_kind("sft")
    tr.model.train()
    loss, _ = tr.method.terms["sft"].loss(tr, sft)
    with torch.no_grad():
        logits, _ = tr.forward(sft)
        logp = gather_logprobs(logits, sft.completion_ids)
        m = sft.completion_mask.float()
        by_hand = (-(logp * m).sum(1) / m.sum(1)).mean()  # each revision's token mean, averaged
    assert abs(loss.item() - by_hand.item()) < 1e-4
    assert tr.ref_model is not None and tr.method.terms["rl"].coefficient(tr.config, 0) == 1.0

    class Down:  # a judge that is down: its stand-in text is not a critique to learn from
        name, stats = "judge:down", FeedbackStats()

        def critique_many(self, items):
            return [Critique(INCORRECT_TEXT, [], source=self.name, fallback="timeout") for _ in items]

    tr.feedback = Down()
    _, collected = _rows(tr, monkeypatch, ["\\boxed{0}"], problems)
    assert len(collected.batch) == 0 and collected.metrics["sft/skipped_fallback"] == 2  # one per distinct draft


def test_warm_start_trains_resumes_and_its_cli_help_lists_every_field(tmp_path):
    tr = trainer("revision-sft", tmp_path, max_steps=2, group_size=3, learning_rate=1e-2, save_every=1)
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    from rltf.methods import build_trainer, make_config

    again = build_trainer(make_config("revision-sft", overrides=dict(model="tiny-random", output_dir=str(tmp_path / "r"))),
                          console=lambda s: None, resume=str(tmp_path / "revision-sft" / "checkpoint-1"))
    assert again.step == 1
    card = (tmp_path / "revision-sft" / "checkpoint-2" / "model" / "README.md").read_text()
    assert "SCoRe Stage I" in card
    out = subprocess.run([sys.executable, "-m", "rltf.cli", "train", "revision-sft", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "--targets" in out.stdout and "--first-turn-kl" in out.stdout
    assert "--offline-data" in out.stdout and "minimal_edit" in out.stdout


@pytest.mark.parametrize("spec", ["add2", "fact_summary", "constraints"])
def test_every_task_with_a_revise_writes_correct_revisions(spec):
    task = get_task(spec)
    for p in task.problems("eval", 20):
        worked = task.worked_solution(p)
        assert task.score(p, worked).correct
        draft = worked.replace(p.answer, "0") if spec == "add2" else "Sam, a 20-year-old nurse from Miami. Hi, ALL"
        revised = task.revise(p, draft)
        assert revised is None or task.score(p, revised).correct
