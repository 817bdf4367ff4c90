"""The held-out evaluations the engine runs at its eval steps: greedy single-turn accuracy
(optionally K rounds of self-critique) and, with ``eval_feedback``, two-round accuracy with each
feedback provider, its fix rate, and the revision-use rate (the critic's fix rate minus
correctness-only feedback's). Functions of the running engine (``run``): its ``config``, ``task``,
``dist``, ``model``, ``rollout_backend()``, ``full_weights()``, ``judge_config()``, ``console``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rltf.feedback import build_feedback
from rltf.models.backend import SamplingParams
from rltf.rollout.evaluation import evaluate as run_evaluation

REVISION_METRICS = ("eval/wrong_first/", "eval/fix_rate/", "eval/revision_use", "eval/fixed_only/", "eval/verbatim",
                    "eval/copied/")


def as_draft_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The revision metrics of ``metrics`` renamed ``eval/draft_*``: what they are when the policy
    being evaluated is the initial one, whose own answers are the drafts."""
    return {k.replace("eval/", "eval/draft_", 1): v for k, v in metrics.items() if k.startswith(REVISION_METRICS)}


@dataclass
class Evaluation:
    """One held-out evaluation of the policy."""

    metrics: dict[str, float]  # eval/... (logged)
    accuracy: float  # single-turn greedy accuracy
    drafts: dict[str, str] | None  # the initial policy's answers as now known (see :func:`evaluate_drafts`)
    # item-level outcomes: "first": {id: {"correct", "reward", task metrics}} (the single-turn answers), and
    # the revisions: "own" | "drafts": {kind: {"wrong": ids, "fixed": ids, "verbatim": ids, "copied": ids}}
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)


def evaluate(run, drafts: dict[str, str] | None, last: bool = True) -> Evaluation:
    """Greedy single-turn accuracy on a fixed held-out set (and K-round self-critique when asked),
    and with ``eval_feedback`` the revisions of the wrong answers (and of the drafts) with each kind;
    with ``eval_feedback_at`` "last", only where ``last`` (the run's last evaluation)."""
    c = run.config
    started = time.perf_counter()
    run.model.eval()
    params = SamplingParams(max_new_tokens=c.max_new_tokens or run.task.max_new_tokens, temperature=0.0)
    rounds = c.eval_rounds
    with run.full_weights():
        feedback = build_feedback("self", backend=run.rollout_backend()) if rounds > 1 else None
        result = run_evaluation(run.task, run.rollout_backend(), n=c.eval_n, seed=12345, rounds=rounds,
                                feedback=feedback, params=params, split="eval", ranks=run.dist,
                                revision=c.revision_prompt, keep_first_answers=bool(c.eval_feedback))
    # the revision evaluations revise these same greedy answers instead of generating them again
    revision: dict[str, float] = {}
    outcomes: dict[str, dict[str, Any]] = {"first": result["items"]}
    revise = bool(c.eval_feedback) and (last or c.eval_feedback_at == "all")
    if revise:
        revision, outcomes["own"] = evaluate_revisions(run, params, own=result["first_answers"])
    if c.eval_feedback and c.eval_drafts and not revise:
        if drafts is None and run.weights_version == 0 and run.resume_from is None:
            drafts = dict(result["first_answers"])  # recorded now, revised at the last evaluation
    elif revise and c.eval_drafts:
        draft_metrics, draft_outcomes, drafts = evaluate_drafts(run, params, result["first_answers"], revision,
                                                                outcomes["own"], drafts)
        revision.update(draft_metrics)
        if draft_outcomes:
            outcomes["drafts"] = draft_outcomes
    out = {"eval/accuracy": result["accuracy"], "eval/ci95_low": result["ci95"][0],
           "eval/ci95_high": result["ci95"][1], "eval/format_rate": result["format_rate"]}
    out["eval/mean_reward"] = result["mean_reward"]
    out.update({f"eval/{k}": v for k, v in result.get("metrics", {}).items()})
    if rounds > 1:
        out.update({f"eval/self_critique_round{k + 1}": a for k, a in enumerate(result["per_round_accuracy"])})
    out.update(revision)
    out["time/eval"] = time.perf_counter() - started
    return Evaluation(out, result["accuracy"], drafts, outcomes)


def evaluate_drafts(run, params: SamplingParams, first_answers: dict[str, str], own: dict[str, float],
                    own_outcomes: dict, drafts: dict[str, str] | None) -> tuple[dict[str, float], dict, dict[str, str]]:
    """:func:`evaluate_revisions` on the initial policy's greedy answers (``eval/draft_*``) -> (metrics,
    item-level outcomes, drafts). They are recorded at the evaluation before step 1 (then the drafts are the policy's own
    answers and the metrics those of :func:`evaluate_revisions`, ``own``) and kept in checkpoints;
    a run without that evaluation, or resumed from a checkpoint without drafts, logs no draft
    metrics (its drafts become ``{}``: none, said once and checkpointed as such)."""
    if drafts is None:
        if run.weights_version == 0 and run.resume_from is None:
            return as_draft_metrics(own), own_outcomes, dict(first_answers)
        run.console("eval_drafts: the initial policy's answers were not recorded in this run (no "
                    "evaluation before step 1, or resumed from a checkpoint without them): no "
                    "eval/draft_* metrics")
        drafts = {}
    if not drafts:
        return {}, {}, drafts
    metrics, outcomes = evaluate_revisions(run, params, drafts=drafts, prefix="draft_")
    return metrics, outcomes, drafts

def evaluate_revisions(run, params: SamplingParams, drafts: dict[str, str] | None = None,
                       prefix: str = "", own: dict[str, str] | None = None) -> tuple[dict[str, float], dict]:
    """Two-round greedy evaluation with each of ``eval_feedback``'s providers on the same held-out
    prompts: the share of wrong first answers each one's critique lets the model fix
    (``eval/fix_rate/KIND``), its two-round accuracy, and ``eval/revision_use`` = fix rate with
    the critic minus fix rate with correctness-only feedback (issue 16's direct test of whether a
    model uses the content of a critique), and the wrong first answers only the critique fixed and
    only correctness-only feedback fixed (``eval/fixed_only/KIND``: McNemar's discordant pairs);
    the share of wrong first answers each one's revision hands back word for word
    (``eval/verbatim/KIND``) and the discordant pairs of that (``eval/verbatim_only/KIND``), and the
    share whose revision copies 20 or more characters of the critique's wording (``eval/copied/KIND``).
    ``drafts``: revise these first answers instead of the policy's; ``prefix`` goes before each
    metric's name (``eval/PREFIXfix_rate/KIND``). ``own``: the policy's greedy first answers,
    already generated by the single-turn evaluation; each feedback kind revises them instead of
    generating them again (greedy decoding gives the same answers: ``studies/feedback-use/probes/eval_reuse_probe.py``).
    -> (metrics, item-level outcomes ``{kind: {"wrong": ids, "fixed": ids, "verbatim": ids}}``)."""
    c = run.config
    kinds = [k.strip() for k in c.eval_feedback.split(",") if k.strip()]
    out: dict[str, float] = {}
    fixed: dict[str, set[str]] = {}
    verbatim: dict[str, set[str]] = {}
    outcomes: dict[str, dict[str, list[str]]] = {}
    with run.full_weights():
        for kind in kinds:
            feedback = build_feedback(kind, backend=run.rollout_backend(), judge=run.judge_config())
            result = run_evaluation(run.task, run.rollout_backend(), n=c.eval_n, seed=12345, rounds=2,
                              feedback=feedback, params=params, split="eval", ranks=run.dist,
                              revision=c.revision_prompt, drafts=drafts if drafts is not None else own)
            if drafts is None:  # with drafts, round 2 accuracy is theirs plus the fixes: fix_rate says it
                out[f"eval/round2_accuracy/{kind}"] = result["per_round_accuracy"][-1]
            out[f"eval/{prefix}wrong_first/{kind}"] = float(result["wrong_first"])
            fixed[kind], verbatim[kind] = set(result["fixed_ids"]), set(result["verbatim_ids"])
            outcomes[kind] = {"wrong": result["wrong_ids"], "fixed": result["fixed_ids"],
                              "verbatim": result["verbatim_ids"], "copied": result["copied_ids"]}
            if result["fix_rate"] is not None:
                out[f"eval/{prefix}fix_rate/{kind}"] = result["fix_rate"]
                out[f"eval/{prefix}verbatim/{kind}"] = len(verbatim[kind]) / result["wrong_first"]
                out[f"eval/{prefix}copied/{kind}"] = len(result["copied_ids"]) / result["wrong_first"]
    rate = f"eval/{prefix}fix_rate/"
    if rate + "critic" in out and rate + "correctness" in out:
        out[f"eval/{prefix}revision_use"] = out[rate + "critic"] - out[rate + "correctness"]
        # the discordant pairs of the same wrong (greedy) first answers, for McNemar's test
        out[f"eval/{prefix}fixed_only/critic"] = float(len(fixed["critic"] - fixed["correctness"]))
        out[f"eval/{prefix}fixed_only/correctness"] = float(len(fixed["correctness"] - fixed["critic"]))
        # the same for revisions that hand the first answer back unchanged (docs/RESULTS.md: a
        # critique can make a trained policy keep its wrong answer more than "incorrect" does)
        out[f"eval/{prefix}verbatim_only/critic"] = float(len(verbatim["critic"] - verbatim["correctness"]))
        out[f"eval/{prefix}verbatim_only/correctness"] = float(len(verbatim["correctness"] - verbatim["critic"]))
    return out, outcomes
