"""The feedback-use warm start (METHODS §4.1): supervised learning of the revision turn.

RLTF's methods assume the model can use a critique when it revises; a small model cannot (docs/
RESULTS.md). This method teaches that turn first, as SCoRe's Stage I, CTRL's SFT stage and
feedback-conditional policies train it: each step samples the policy's own answers (its drafts),
keeps the wrong ones, asks the feedback provider for a critique of each (the programmatic critic, a
judge, the span reward model; the leak guard of the judge path applies unchanged), and trains

    L = -(1/|y1*|) sum_t log pi(y1*_t | x1, y1*_<t),   x1 = the revision prompt built from (x0, y0, c0)

on a correct revision y1*: the task's smallest edit of the draft that follows the critique
(``Task.revise``: add2 recomputes the wrong step and the boxed result, the constraint task removes
exactly the violations the critic names), else the task's worked solution. With ``feedback:
correctness`` the same run is the control: identical drafts, targets and training, but the
context says only "Your previous attempt was incorrect.", so what the critique adds can be told
apart from learning to answer better on a second try. ``first_turn_kl`` adds SCoRe's anchor: a KL
to the initial policy on the drafts' tokens, so that the first turn stays where it was. With
``offline_data`` it trains on stored records that carry a corrected answer (people's, from
``rltf label-studio import``) instead of sampling.
"""
from __future__ import annotations

from dataclasses import dataclass

from rltf.algorithms import fm_loss
from rltf.algorithms.losses import AGGREGATIONS
from rltf.engine.config import TrainConfig
from rltf.engine.config_fields import arg
from rltf.engine.data import ProblemStream, RecordStream
from rltf.engine.parts import Collected, LossTerm, Method
from rltf.errors import DataError
from rltf.feedback.records import read_annotations
from rltf.methods.common import policy_gradient_term
from rltf.methods.registry import register_method
from rltf.rollout import BatchRows, revision_messages, stored_revision_messages

WARM_START_PAPER = ("Revision SFT as a feedback-use warm start: SCoRe Stage I (Kumar et al. 2024, arXiv 2409.12917), "
                    "CTRL (Xie et al. 2025, arXiv 2502.03492), feedback-conditional policies (arXiv 2509.22638).")
TARGETS = ("minimal_edit", "worked_solution")


@dataclass
class RevisionSFTConfig(TrainConfig):
    """Feedback-use warm start: SFT of the revision turn on the policy's own wrong drafts, each with a
    critique and a correct revision (METHODS §4.1)."""

    method: str = arg("revision-sft", "training method (set by the command)")
    targets: str = arg("minimal_edit", "the revision trained on: minimal_edit (the task's smallest edit of the "
                                       "draft that follows the critique, else the worked solution) or "
                                       "worked_solution (always the task's worked solution)", choices=TARGETS)
    first_turn_kl: float = arg(0.0, "SCoRe's anchor: a KL penalty to the initial policy on the drafts' tokens, so "
                                    "the first turn stays where it was (0 = off)", ge=0)
    max_target_tokens: int = arg(256, "longest revision trained on, in tokens (longer ones are cut)", ge=1)
    offline_data: str | None = arg(None, "annotation records with a corrected answer (`revision`, from `rltf "
                                         "label-studio import`): train on people's (question, answer, critique) -> "
                                         "revision instead of sampling drafts")
    learning_rate: float = arg(1e-5, "peak learning rate (Adam)", ge=0)
    group_size: int = arg(4, "drafts sampled per prompt (only the wrong ones are trained on)", ge=1)
    prompts_per_step: int = arg(8, "prompts sampled per step", ge=1)
    loss_aggregation: str = arg("seq-mean-token-mean", "seq-mean-token-mean (METHODS §4.1: each revision's "
                                                       "token mean, averaged over revisions), sum or token-mean",
                                choices=AGGREGATIONS)


def collect(run, problems, seed: int) -> Collected:
    """Drafts of this process's share of the step's problems; each distinct wrong draft with its
    critique becomes one ``sft`` row (revision prompt -> correct revision), and, with the anchor,
    one ``rl`` row of the draft itself with advantage 0 (its KL term only)."""
    c, task = run.config, run.task
    N = c.group_size
    rollout = run.roll_out(problems, seed, N, 1)
    items, drafts = [], []
    for k, e in enumerate(rollout.episodes):
        problem, draft = rollout.problems[k // N], e.turns[0]
        if not draft.correct and (problem.id, draft.text) not in {(p.id, d.text) for p, d, _ in items}:
            items.append((problem, draft, k // N))
        drafts.append(draft)
    critiques = run.feedback.critique_many([(task, p, d.text, d.score) for p, d, _ in items])
    rows = BatchRows()
    counts = {"drafts_wrong": 0, "targets_minimal_edit": 0, "targets_worked_solution": 0, "skipped_fallback": 0,
              "skipped_bad_target": 0}
    for (problem, draft, g), critique in zip(items, critiques):
        counts["drafts_wrong"] += 1
        if critique.fallback:  # a judge failure's stand-in text is not a critique: nothing to learn from
            counts["skipped_fallback"] += 1
            continue
        target = task.revise(problem, draft.text) if c.targets == "minimal_edit" else None
        kind = "minimal_edit" if target is not None else "worked_solution"
        target = target if target is not None else task.worked_solution(problem)
        if not task.grade(problem, target).correct:  # never train on a wrong "revision"
            counts["skipped_bad_target"] += 1
            continue
        counts[f"targets_{kind}"] += 1
        messages = revision_messages(task, problem, task.messages(problem), draft.text, critique.text,
                                     c.revision_prompt)
        rows.add("sft", run.chat_prompt_ids(messages), target_ids(run, target), turn=1, group=rollout.first + g)
        if c.first_turn_kl:
            rows.add("rl", draft.prompt_ids, draft.token_ids, turn=0, group=rollout.first + g, advantage=0.0,
                     sampler_logprobs=draft.logprobs)
    everyone = run.dist.gather([(d.correct, len(d.token_ids)) for d in drafts])
    summed = run.dist.sum_dict({k: float(v) for k, v in counts.items()})
    metrics = {"accuracy/turn0": sum(ok for ok, _ in everyone) / len(everyone),
               "tokens/generated": float(sum(n for _, n in everyone)), "time/generate": rollout.generate_seconds,
               "critique/failed": run.feedback_failures(rollout), **{f"sft/{k}": v for k, v in summed.items()}}
    trained = summed["targets_minimal_edit"] + summed["targets_worked_solution"]
    return Collected(rows.batch(run.tokenizer.pad_token_id), int(trained), metrics, int(metrics["tokens/generated"]))


def target_ids(run, text: str) -> list[int]:
    """A revision's tokens (capped at ``max_target_tokens``) and EOS."""
    ids = run.tokenizer(text.strip(), add_special_tokens=False)["input_ids"][: run.config.max_target_tokens]
    return list(ids) + [run.tokenizer.eos_token_id]


def stream(run, position: int):
    """The task's problems, or with ``offline_data`` the stored records that have a corrected answer."""
    path = run.config.offline_data
    if not path:
        return ProblemStream(run.task, run.config.seed, position)
    usable = [r for r in read_annotations(path) if isinstance(r.get("revision"), str) and r["revision"].strip()
              and r["critique"].strip()]
    if not usable:
        raise DataError(f"{path}: no record has both a critique and a corrected answer (`revision`) to learn")
    return RecordStream(usable, run.config.seed, position)


def collect_any(run, items, seed: int) -> Collected:
    """Sampled drafts (:func:`collect`), or with ``offline_data`` this process's share of the step's
    stored records: their question, answer and critique -> their corrected answer."""
    if not run.config.offline_data:
        return collect(run, items, seed)
    c = run.config
    lo, hi = run.dist.shard_bounds(len(items), "records per step (prompts_per_step)")
    rows = BatchRows()
    for k, r in enumerate(items[lo:hi]):
        messages = stored_revision_messages(r["prompt"], r["answer"], r["critique"], c.revision_prompt)
        rows.add("sft", run.chat_prompt_ids(messages), target_ids(run, r["revision"]), turn=1, group=lo + k)
    metrics = {"offline/records": float(len(items)), "tokens/generated": 0.0}
    return Collected(rows.batch(run.tokenizer.pad_token_id), len(items), metrics, 0)


def sft_loss(run, batch):
    """The revision's negative log-likelihood (its tokens only)."""
    return fm_loss(run.logprobs(batch), batch.completion_mask, run.config.loss_aggregation), {}


register_method(Method(
    "revision-sft", RevisionSFTConfig, WARM_START_PAPER, collect_any,
    {"sft": LossTerm(sft_loss),
     "rl": policy_gradient_term(lambda c, batch: c.kl_coef + c.first_turn_kl, lambda c: False)},
    turns=1, stream=stream, needs_reference=lambda c: bool(c.kl_coef or c.first_turn_kl)))
