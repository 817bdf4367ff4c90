"""Critique-GRPO and SCoRe's options train on the tiny random model (two steps each, as `make test`
runs every method), with their rollout rules checked by hand."""
import json

import pytest
import torch

from rltf.errors import ConfigError
from rltf.rollout.episode import Episode, Turn
from rltf.tasks.base import Score
from rltf.methods.critique_grpo import choose_refinements, revision_selector
from rltf.methods import citation_for, make_config
from rltf.engine.held_out import evaluate_revisions
from rltf.eval.compare_stats import item_level_pairs
from rltf.methods.rltf import first_turn_kl, returns
from helpers import BASE, collect, parity_grader, patch_losses, term_loss, trainer


def _episode(first_ok: bool, second_ok: bool | None = None) -> Episode:
    def turn(ok):
        return Turn([], "x", [1], [0.0], [1], "stop", Score(1.0 if ok else 0.0, ok, True, "", None))
    e = Episode("p", 0, [turn(first_ok)])
    if second_ok is not None:
        e.turns.append(turn(second_ok))
    return e


def test_refinement_selection_rules_by_hand():
    group_a = [_episode(False), _episode(False)]  # n = 2: all wrong
    group_b = [_episode(True), _episode(False)]
    eps = group_a + group_b
    assert revision_selector("all_wrong", 2)(eps) == [True, True, False, False]
    assert revision_selector("wrong_only", 2)(eps) == [True, True, False, True]
    assert revision_selector("always", 2)(eps) == [True] * 4
    # correct refinements first, then the rest, in sampling order; answers without one are skipped
    revised = [_episode(False, False), _episode(False), _episode(False, True), _episode(False, True)]
    assert choose_refinements(revised, 1) == [revised[2]]
    assert choose_refinements(revised, 3) == [revised[2], revised[3], revised[0]]


def test_critique_grpo_trains_refinements_against_the_question(tmp_path, monkeypatch):
    tr = trainer("critique-grpo", tmp_path, max_steps=2, group_size=4, refinements=1, refine_when="always")
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    seen = {}
    real = tr.accumulate

    def spy(batch, n_episodes, scale):
        seen["kinds"], seen["n"] = list(batch.kind), n_episodes
        refine = batch.of_kind("refine")
        if len(refine):  # a refinement row is trained on the FIRST turn's prompt (the original question)
            seen["prompt_ok"] = all(len(p) for p in refine.prompt_ids)
        return real(batch, n_episodes, scale)

    monkeypatch.setattr(tr, "accumulate", spy)
    before = [p.detach().clone() for p in tr.model.parameters()]
    m1 = tr.train_step()
    m2 = tr.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    assert seen["n"] == 2  # the loss is divided by the number of prompts
    assert m1["refine/revised"] == 6 and m1["refine/prompts_with_refinement"] == 1.0  # always: n = 3 per prompt
    assert 0.0 <= m2["refine/chosen_correct"] <= 1.0 and "loss/total" in m2
    with pytest.raises(ConfigError, match="smaller than group_size"):
        trainer("critique-grpo", tmp_path / "bad", group_size=2, refinements=2)


def test_critique_grpo_refines_only_all_wrong_prompts_by_default(tmp_path, monkeypatch):
    tr = trainer("critique-grpo", tmp_path, max_steps=1, group_size=4)
    monkeypatch.setattr(tr.task, "grade", lambda problem, completion: Score(0.0, False, True, "", None))
    m = tr.train_step()
    assert m["refine/revised"] == 6 and m["accuracy/turn0"] == 0.0  # every answer wrong: all 3 x 2 refined
    # every reward 0: every advantage 0, nothing to train (the zero-advantage skip is exact without KL)
    assert m["refine/chosen_correct"] == 0.0


def test_score_options_revision_bonus_first_turn_anchor_and_stage_one(tmp_path, monkeypatch):
    tr = trainer("multiturn-grpo", tmp_path, max_steps=2, group_size=4, revision_bonus=10.0, first_turn_kl=0.1,
                 revise_correct=True, score_stage1_steps=1, gamma=0.0)
    assert tr.ref_model is not None  # the first-turn anchor needs the initial policy
    r0, r1 = torch.tensor([[1.0, 0.0, 0.0, 1.0]]), torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    reached = torch.ones(1, 4, dtype=torch.bool)
    g0, g1 = returns(tr.config, 0, r0, r1, reached)  # step 0 < score_stage1_steps: Stage I, no first-turn return
    assert g0.tolist() == [[0.0] * 4] and g1.tolist() == [[1.0, 11.0, 0.0, -10.0]]
    g0, _ = returns(tr.config, 1, r0, r1, reached)  # step 1: Stage II
    assert g0.tolist() == r0.tolist()
    batch = type("B", (), {"turn": torch.tensor([0, 1, 0]), "completion_ids": torch.zeros(3, 1, dtype=torch.long)})
    assert first_turn_kl(tr.config, batch).tolist() == pytest.approx([0.1, 0.0, 0.1])  # kl_coef 0 + anchor on turn 0
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    before = [p.detach().clone() for p in tr.model.parameters()]
    m = tr.train_step()
    assert m["episodes/reached_turn1"] == 1.0  # revise_correct: every episode gets a second turn
    assert "revision/right_to_wrong" in m or m["accuracy/turn0"] == 0.0
    tr.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    card = (tr.save() / "model" / "README.md").read_text()
    assert "SCoRe" in card and "Kumar et al." in card and "RL from Text Feedback" in card
    plain = citation_for(make_config("multiturn-grpo"))
    assert "SCoRe" not in plain and "RL from Text Feedback" in plain


def test_sdpo_teacher_context_by_hand():
    from rltf.methods.sdpo import teacher_text

    assert teacher_text("Q?", None, None) is None  # nothing to teach with: no distillation
    assert teacher_text("Q?", "A1", None) == "Q?\nCorrect solution:\n\nA1\n\n\n\nCorrectly solve the original question.\n"
    assert teacher_text("Q?", None, " wrong digit ") == ("Q?\nThe following is feedback from your unsuccessful earlier "
                                                         "attempt:\n\nwrong digit\n\n\n\nCorrectly solve the original "
                                                         "question.\n")


@pytest.mark.parametrize("distill, teacher", [("sampled_token", "ema"), ("topk_logits", "initial"),
                                              ("full_logits", "live")])
def test_sdpo_distills_the_feedback_conditioned_teacher(distill, teacher, tmp_path, monkeypatch):
    alpha = 1.0 if distill == "sampled_token" else 0.5
    tr = trainer("sdpo", tmp_path, max_steps=2, group_size=4, distill=distill, teacher=teacher, alpha=alpha, topk=8,
                 topk_tail=True)
    assert (tr.ref_model is not None) == (teacher == "initial")
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    seen = {}
    def spy(kind, real):
        def loss(run, batch):
            if kind == "sd":  # the teacher reads the same answer after a longer, feedback-bearing prompt
                seen["context_longer"] = bool((batch.context_mask.sum(1) > batch.prompt_mask.sum(1)).all())
                seen["same_answer"] = torch.equal(batch.with_context().completion_ids, batch.completion_ids)
            return real(run, batch)
        return loss

    patch_losses(monkeypatch, tr, spy)
    before = [p.detach().clone() for p in tr.model.parameters()]
    ema = tr.method_state.model if tr.method_state is not None else None
    ema_before = [p.detach().clone() for p in ema.parameters()] if ema is not None else None
    m = tr.train_step()
    tr.train_step()
    assert 0.0 < m["sd/distilled_fraction"] <= 1.0 and seen == {"context_longer": True, "same_answer": True}
    assert "loss/sd" in m and "sd/token_loss" in m and "loss/rl" not in m  # sd_weight 1: pure self-distillation
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    if ema_before is not None:  # theta_T <- .95 theta_T + .05 theta: moved, but less than the policy
        moved_t = sum((a - b).abs().sum() for a, b in zip(ema_before, ema.parameters()))
        moved_s = sum((a - b).abs().sum() for a, b in zip(before, tr.model.parameters()))
        assert 0 < moved_t < moved_s


def test_sdpo_refuses_sampled_token_with_another_divergence(tmp_path):
    with pytest.raises(ConfigError, match="alpha: 1"):
        trainer("sdpo", tmp_path, distill="sampled_token", alpha=0.5)


class ReviserBackend:
    """A scripted policy for add2: every first answer is wrong; a revision is right exactly when the
    critique in the prompt names a digit (the programmatic critic does; 'your answer was incorrect'
    does not) — a model that USES the critique's content."""

    name = "scripted"

    def __init__(self, task, n):
        self.answers = {task.format_question(p): p.answer for p in task.problems("eval", n, seed=12345)}

    def generate(self, conversations, params, seed=0, keys=None):
        from rltf.models.backend import Generation

        out = []
        for messages in conversations:
            text = messages[-1]["content"]
            answer = next(a for q, a in self.answers.items() if q in text)
            uses = "Expert critique" in text and "digit" in text
            reply = f"\\boxed{{{answer if uses else 0}}}"
            out.append(Generation(reply, [1, 2], [0.0, 0.0], [1], "stop"))
        return out


def test_fix_rates_and_revision_use_measure_the_critiques_content():
    from rltf.feedback import build_feedback
    from rltf.models.backend import SamplingParams
    from rltf.rollout.evaluation import evaluate
    from rltf.tasks import get_task

    task = get_task("add2")
    backend = ReviserBackend(task, 12)
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    critic = evaluate(task, backend, n=12, seed=12345, rounds=2, feedback=build_feedback("critic"), params=params)
    plain = evaluate(task, backend, n=12, seed=12345, rounds=2, feedback=build_feedback("correctness"), params=params)
    assert critic["wrong_first"] == plain["wrong_first"] == 12 and critic["accuracy"] == 0.0
    assert critic["fix_rate"] == 1.0 and plain["fix_rate"] == 0.0  # revision use = 1 - 0
    assert critic["per_round_accuracy"] == [0.0, 1.0] and critic["break_rate"] is None
    assert len(critic["fixed_ids"]) == 12 and plain["fixed_ids"] == []  # which answers each fixed
    # told only "incorrect", this model hands "\boxed{0}" back word for word
    assert critic["verbatim_ids"] == [] and plain["verbatim_ids"] == plain["fixed_ids"] + sorted(critic["fixed_ids"])
    one = evaluate(task, backend, n=12, seed=12345, rounds=1, params=params)
    assert one["fix_rate"] is None  # no revision round, no fix rate


def test_trainer_logs_fix_rates_and_revision_use(tmp_path):
    tr = trainer("grpo", tmp_path, eval_feedback="critic,correctness", eval_n=4)
    ev = tr.evaluate()
    for kind in ("critic", "correctness"):
        assert 0.0 <= ev[f"eval/round2_accuracy/{kind}"] <= 1.0 and ev[f"eval/wrong_first/{kind}"] >= 0
    if ev["eval/wrong_first/critic"]:
        assert ev["eval/revision_use"] == pytest.approx(ev["eval/fix_rate/critic"] - ev["eval/fix_rate/correctness"])
        # the discordant pairs differ by exactly the difference of the fix counts
        diff = ev["eval/fixed_only/critic"] - ev["eval/fixed_only/correctness"]
        assert diff == pytest.approx(ev["eval/revision_use"] * ev["eval/wrong_first/critic"])
    with pytest.raises(ConfigError, match="eval_feedback must be one of"):
        trainer("grpo", tmp_path / "bad", eval_feedback="critic,telepathy")


def test_trainer_counts_the_answers_only_the_critique_fixed(tmp_path, monkeypatch):
    """The trainer's revision evaluation with a model that uses the critique's content: all 12 wrong
    first answers are fixed with the critic's critique, none with correctness-only feedback, so all 12
    are discordant pairs on the critique's side (what McNemar's test in `rltf compare` reads)."""
    from rltf.models.backend import SamplingParams

    tr = trainer("grpo", tmp_path, eval_feedback="critic,correctness", eval_n=12)
    backend = ReviserBackend(tr.task, 12)
    monkeypatch.setattr(tr, "rollout_backend", lambda: backend)
    ev, items = evaluate_revisions(tr, SamplingParams(max_new_tokens=8, temperature=0.0))
    assert len(items["critic"]["wrong"]) == 12 and items["critic"]["fixed"] == items["critic"]["wrong"]
    assert ev["eval/wrong_first/critic"] == ev["eval/wrong_first/correctness"] == 12
    assert ev["eval/revision_use"] == 1.0
    assert ev["eval/fixed_only/critic"] == 12 and ev["eval/fixed_only/correctness"] == 0
    assert ev["eval/verbatim/critic"] == 0.0 and ev["eval/verbatim/correctness"] == 1.0
    assert ev["eval/verbatim_only/critic"] == 0 and ev["eval/verbatim_only/correctness"] == 12


class CountingBackend(ReviserBackend):
    """ReviserBackend that records every conversation it is asked to answer."""

    def __init__(self, task, n):
        super().__init__(task, n)
        self.asked: list[str] = []

    def generate(self, conversations, params, seed=0, keys=None):
        self.asked += [m[-1]["content"] for m in conversations]
        return super().generate(conversations, params, seed=seed, keys=keys)


def test_an_evaluation_generates_each_first_answer_once_and_revises_it_per_feedback(tmp_path, monkeypatch):
    """The revision evaluations revise the single-turn evaluation's greedy answers: 12 first answers
    and 12 revisions per feedback kind (36 generations; 60 when each kind answered again), with the
    same metrics as when each kind generates its own first answers."""
    from rltf.models.backend import SamplingParams

    tr = trainer("grpo", tmp_path, eval_feedback="critic,correctness", eval_n=12)
    backend = CountingBackend(tr.task, 12)
    monkeypatch.setattr(tr, "rollout_backend", lambda: backend)
    ev = tr.evaluate()
    questions = [q for q in backend.asked if "Expert critique" not in q]
    assert len(backend.asked) == 36 and len(questions) == 12 and len(set(questions)) == 12
    regenerated, _ = evaluate_revisions(tr, SamplingParams(max_new_tokens=8, temperature=0.0))
    assert len(backend.asked) == 36 + 2 * 24  # without `own`, each kind answers the 12 questions again
    assert {k: ev[k] for k in regenerated} == regenerated
    assert ev["eval/revision_use"] == 1.0 and ev["eval/round2_accuracy/critic"] == 1.0


class AlwaysRightBackend(ReviserBackend):
    """A model that answers every add2 question right, first time and on revision."""

    def generate(self, conversations, params, seed=0, keys=None):
        from rltf.models.backend import Generation

        out = []
        for messages in conversations:
            answer = next(a for q, a in self.answers.items() if q in messages[-1]["content"])
            out.append(Generation(f"\\boxed{{{answer}}}", [1, 2], [0.0, 0.0], [1], "stop"))
        return out


def test_run_episodes_revises_given_first_answers():
    from rltf.feedback import build_feedback
    from rltf.models.backend import SamplingParams
    from rltf.rollout.episode import run_episodes
    from rltf.tasks import get_task

    task = get_task("add2")
    problems = task.problems("eval", 3, seed=12345)
    backend = AlwaysRightBackend(task, 3)
    drafts = {str(p.id): "\\boxed{1000}" for p in problems}
    episodes = run_episodes(task, problems, backend, build_feedback("correctness"),
                            SamplingParams(max_new_tokens=8, temperature=0.0), first_answers=drafts)
    assert [e.turns[0].text for e in episodes] == ["\\boxed{1000}"] * 3  # the drafts, not the backend's
    assert all(not e.turns[0].correct and e.turns[0].token_ids == [] for e in episodes)
    assert all(len(e.turns) == 2 and e.turns[1].correct for e in episodes)  # revised by the backend
    with pytest.raises(ValueError, match="no first answer"):
        run_episodes(task, problems, backend, build_feedback("correctness"),
                     SamplingParams(max_new_tokens=8, temperature=0.0), first_answers={})


def test_draft_revision_use_keeps_measuring_when_the_policy_no_longer_errs(tmp_path, monkeypatch):
    """eval_drafts: the initial policy's wrong answers are recorded at the evaluation before step 1
    and revised by the later policy; they survive a checkpoint."""
    tr = trainer("grpo", tmp_path, eval_feedback="critic,correctness", eval_n=12, eval_drafts=True)
    monkeypatch.setattr(tr, "rollout_backend", lambda: ReviserBackend(tr.task, 12))
    first = tr.evaluate()  # the initial policy: every answer wrong, the critique fixes them all
    assert first["eval/wrong_first/critic"] == 12 and first["eval/revision_use"] == 1.0
    assert first["eval/draft_wrong_first/critic"] == 12 and first["eval/draft_revision_use"] == 1.0
    assert first["eval/draft_fixed_only/critic"] == 12 and first["eval/draft_fixed_only/correctness"] == 0
    record = json.loads((tmp_path / "grpo" / "eval_outcomes.jsonl").read_text().splitlines()[-1])
    assert item_level_pairs(record, "drafts") == (12, 0, 12) and item_level_pairs(record, "own", "verbatim") == (0, 12, 12)
    assert len(tr.eval_drafts) == 12 and set(tr.eval_drafts.values()) == {"\\boxed{0}"}
    # later: a policy that is always right has no wrong answers of its own, but revises the drafts
    tr.weights_version = 1
    monkeypatch.setattr(tr, "rollout_backend", lambda: AlwaysRightBackend(tr.task, 12))
    later = tr.evaluate()
    assert later["eval/accuracy"] == 1.0 and later["eval/wrong_first/critic"] == 0
    assert "eval/revision_use" not in later
    assert later["eval/draft_wrong_first/critic"] == later["eval/draft_wrong_first/correctness"] == 12
    assert later["eval/draft_fix_rate/critic"] == later["eval/draft_fix_rate/correctness"] == 1.0
    assert later["eval/draft_revision_use"] == 0.0 and later["eval/draft_fixed_only/critic"] == 0
    assert tr.checkpoint_state()["eval_drafts"] == tr.eval_drafts
    # a run whose first evaluation comes after training began has no drafts: no draft metrics
    late = trainer("grpo", tmp_path / "late", eval_feedback="critic,correctness", eval_n=12, eval_drafts=True)
    late.weights_version = 1
    monkeypatch.setattr(late, "rollout_backend", lambda: ReviserBackend(late.task, 12))
    assert not any(k.startswith("eval/draft_") for k in late.evaluate())


def test_drafts_survive_a_resume(tmp_path):
    from rltf.methods import build_trainer, make_config

    tr = trainer("grpo", tmp_path, eval_feedback="critic,correctness", eval_drafts=True, max_steps=2)
    tr.eval_drafts = {"add2/eval/0": "\\boxed{3}", "add2/eval/1": "12"}
    ckpt = tr.save()
    resumed = build_trainer(make_config("grpo", overrides={**BASE, "output_dir": str(tmp_path / "grpo"),
                                                           "eval_feedback": "critic,correctness",
                                                           "eval_drafts": True, "max_steps": 2}),
                            console=lambda s: None, resume=str(ckpt))
    assert resumed.eval_drafts == tr.eval_drafts


def test_revision_prompts_paper_plain_and_chat():
    from rltf.rollout.episode import revision_messages
    from rltf.tasks import get_task

    task = get_task("add2")
    problem = task.problems("train", 1)[0]
    first = task.messages(problem)
    paper = revision_messages(task, problem, first, " 12 ", "The tens digit is wrong.", "paper")
    plain = revision_messages(task, problem, first, " 12 ", "The tens digit is wrong.", "plain")
    chat = revision_messages(task, problem, first, " 12 ", "The tens digit is wrong.", "chat")
    # paper and plain: one new user message with question, answer and critique (few-shot turns kept)
    assert len(paper) == len(plain) == len(first) and "Expert critique" in paper[-1]["content"]
    assert "Expert critique" not in plain[-1]["content"] and "Feedback on it: The tens digit" in plain[-1]["content"]
    assert task.format_question(problem) in plain[-1]["content"]
    # chat: the conversation goes on, the answer as the assistant's turn, the critique as the user's
    assert chat[:len(first)] == first and chat[-2] == {"role": "assistant", "content": "12"}
    assert chat[-1]["role"] == "user" and chat[-1]["content"].startswith("The tens digit is wrong.")
    with pytest.raises(ValueError, match="revision prompt"):
        revision_messages(task, problem, first, "12", "x", "poem")


def test_chat_revisions_in_training_and_evaluation(tmp_path, monkeypatch):
    tr = trainer("rltf-sd", tmp_path, max_steps=1, group_size=4, revision_prompt="chat", eval_feedback="correctness")
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    seen = []
    real = tr.backend.generate

    def spy(conversations, params, seed=0, keys=None):
        seen.extend(len(c) for c in conversations)
        return real(conversations, params, seed, keys)

    monkeypatch.setattr(tr.backend, "generate", spy)
    m = tr.train_step()
    first_len = len(tr.task.messages(tr.task.problems("train", 1)[0]))
    assert m["episodes/reached_turn1"] > 0 and first_len + 2 in seen  # revisions continue the chat
    seen.clear()
    monkeypatch.setattr(tr.task, "grade", lambda problem, completion: Score(0.0, False, True, "", None))
    ev = tr.evaluate()  # every greedy answer wrong: each is revised once with correctness-only feedback
    assert ev["eval/wrong_first/correctness"] == 4 and first_len + 2 in seen


@pytest.mark.parametrize("distill", ["sampled_token", "full_logits"])
def test_sdpo_teacher_reading_the_students_own_prompt_teaches_nothing(distill, tmp_path, monkeypatch):
    """Alignment check: with the live teacher shown exactly the student's prompt (left-aligned
    contexts of other lengths than the prompts in the same batch), the teacher's logits at each answer
    token equal the student's, so the loss and its gradient are 0; with the real feedback contexts not."""
    tr = trainer("sdpo", tmp_path, max_steps=1, group_size=4, distill=distill, teacher="live")
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    batch, _, _ = collect(tr, tr.stream.take(tr.config.prompts_per_step), seed=0)
    sd = batch.of_kind("sd")
    assert len(sd) >= 2 and (sd.context_mask.sum(1) > sd.prompt_mask.sum(1)).all()
    own = type(sd)(**{**sd.__dict__, "context_ids": sd.prompt_ids.clone(), "context_mask": sd.prompt_mask.clone()})
    tr.model.train()
    loss, _ = term_loss(tr, "sd", own)
    loss.backward()
    grads = [p.grad for p in tr.model.parameters() if p.grad is not None]
    assert abs(loss.item()) < 1e-6 and all(g.abs().max() < 1e-6 for g in grads)
    tr.model.zero_grad()
    real, _ = term_loss(tr, "sd", sd)
    assert abs(real.item()) > 1e-5  # the feedback context does change the (near-uniform, random) teacher
