"""SDPO-style self-distillation (METHODS §3.1): the policy that sees feedback teaches the policy
that does not, on the student's own answers.

One step: N answers per prompt (one turn); every wrong answer gets a critique (no revision is
sampled). Each answer y0_i gets a teacher context x_T,i = the question + a successful sibling's
answer (if one reached ``success_threshold``) + the critique of y0_i (if wrong) + "Correctly solve
the original question."; an answer with neither gets no distillation. The teacher (an EMA of the
policy, the initial policy, or the live policy) re-scores y0_i after x_T,i without gradient; its
next-token distributions are distilled into the policy after x0 on every token of y0_i
(:func:`rltf.algorithms.distill.sdpo_loss`). Loss = (1 - w) GRPO + w SD: the coefficients of the
``rl`` and ``sd`` terms.
"""
from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from rltf.algorithms import group_centered_advantages
from rltf.algorithms.distill import SDPO_MODES, TEACHERS, ema_update, sdpo_loss
from rltf.algorithms.losses import AGGREGATIONS
from rltf.engine.config_fields import arg
from rltf.engine.parts import Collected, LossTerm, Method
from rltf.errors import ConfigError
from rltf.feedback.prompts import SDPO_CLOSING, SDPO_FEEDBACK, SDPO_SOLUTION
from rltf.methods.common import EpisodeOutcome, RLTFFamilyConfig, outcome_metrics, policy_gradient_term
from rltf.methods.registry import register_method
from rltf.rollout import BatchRows

SDPO_PAPER = ("Hubotter et al., Reinforcement Learning via Self-Distillation (SDPO), 2026 (arXiv 2601.20802); "
              "TRL's experimental SDPOTrainer.")


@dataclass
class SDPOConfig(RLTFFamilyConfig):
    """SDPO-style self-distillation (METHODS §3.1): a feedback-conditioned self-teacher.

    The policy shown the critique (and a successful sibling answer) is the teacher of the policy
    without it, on the student's own answers."""

    method: str = arg("sdpo", "training method (set by the command)")
    distill: str = arg("sampled_token", "what is distilled at each answer token: sampled_token (the sampled "
                                        "token's log-ratio, TRL's default; today's RLTF-SD signal), full_logits "
                                        "(the whole next-token distribution) or topk_logits (the student's top-k)",
                       choices=SDPO_MODES)
    alpha: float = arg(1.0, "divergence: 1 reverse KL(student||teacher) (the paper), 0 forward KL, 0.5 "
                            "Jensen-Shannon (the official code); sampled_token needs 1", ge=0, le=1)
    topk: int = arg(100, "k of topk_logits (the official code: 100)", ge=1)
    topk_tail: bool = arg(False, "topk_logits: add a bucket for the mass outside the top k (the official code)")
    teacher: str = arg("ema", "the teacher's weights: ema (an exponential moving average of the policy, TRL's "
                              "default), initial (the frozen initial policy) or live (the current policy: "
                              "unregularised, diverged in the paper)", choices=TEACHERS)
    ema_rate: float = arg(0.05, "EMA teacher update: theta_T <- (1 - rate) theta_T + rate theta after each step",
                          gt=0, le=1)
    sd_weight: float = arg(1.0, "w in (1 - w) L_GRPO + w L_SD (TRL: 1, pure self-distillation); with distill: "
                                "sampled_token this is the paper's hybrid advantage lam A_GRPO + (1 - lam) "
                                "(log q - log p) with lam = 1 - w (the paper's lam 0.9 for small models = w 0.1)",
                           ge=0, le=1)
    is_clip: float = arg(2.0, "cap of the importance weight exp(log pi - log pi_sampler) on each token (0 = off)",
                         ge=0)
    success_threshold: float = arg(1.0, "a sibling answer with reward >= this is shown to the teacher as a "
                                        "correct solution (task rewards are at most 1)", ge=-1e3, le=1e3)
    teacher_feedback: bool = arg(True, "show the teacher the critique of a wrong answer")
    teacher_solution: bool = arg(True, "show the teacher a successful sibling answer (never the answer itself)")
    loss_aggregation: str = arg("seq-mean-token-mean", "seq-mean-token-mean (TRL), sum or token-mean",
                                choices=AGGREGATIONS)

    def check(self):
        if self.distill == "sampled_token" and self.alpha != 1.0:
            raise ConfigError("distill: sampled_token estimates the reverse KL: set alpha: 1 (or distill: full_logits)")


def teacher_text(question: str, solution: str | None, critique: str | None) -> str | None:
    """x_T: the question + a correct sibling answer and/or this answer's critique + the closing line;
    None when there is neither (no distillation for that answer)."""
    if solution is None and critique is None:
        return None
    text = question
    if solution is not None:
        text += SDPO_SOLUTION.format(solution=solution.strip())
    if critique is not None:
        text += SDPO_FEEDBACK.format(critique=critique.strip())
    return text + SDPO_CLOSING


def collect(run, problems, seed: int) -> Collected:
    c = run.config
    N = c.group_size
    rollout = run.roll_out(problems, seed, N, 1)
    episodes, lo, G = rollout.episodes, rollout.first, len(rollout.problems)
    t1 = time.perf_counter()
    owners = [p for p in rollout.problems for _ in range(N)]
    wrong = [k for k, e in enumerate(episodes) if not e.turns[0].correct] if c.teacher_feedback else []
    critiques = dict(zip(wrong, run.feedback.critique_many(
        [(run.task, owners[k], episodes[k].turns[0].text, episodes[k].turns[0].score) for k in wrong])))
    t2 = time.perf_counter()
    r0 = torch.tensor([e.turns[0].reward for e in episodes]).view(G, N)
    a0 = group_centered_advantages(r0, std_normalize=c.std_normalize)
    rows, distilled = BatchRows(), 0
    for k, e in enumerate(episodes):
        g, i = divmod(k, N)
        first = e.turns[0]
        if c.sd_weight < 1.0:
            rows.add("rl", first.prompt_ids, first.token_ids, turn=0, group=lo + g, advantage=a0[g, i],
                     sampler_logprobs=first.logprobs)
        solution = None
        if c.teacher_solution:  # the first successful sibling, never the answer itself
            solution = next((s.turns[0].text for j, s in enumerate(episodes[g * N:(g + 1) * N])
                             if j != i and s.turns[0].reward >= c.success_threshold), None)
        critique = critiques[k].text if k in critiques else None
        text = teacher_text(run.task.format_question(owners[k]), solution, critique)
        if text is None:
            continue
        distilled += 1
        rows.add("sd", first.prompt_ids, first.token_ids, turn=0, group=lo + g, advantage=1.0,
                 sampler_logprobs=first.logprobs, context=run.chat_prompt_ids(run.task.messages(owners[k], text)))
    outcomes = run.dist.gather([EpisodeOutcome.of(e) for e in episodes])
    n = len(outcomes)
    metrics = {**outcome_metrics(outcomes), "time/generate": rollout.generate_seconds, "time/feedback": t2 - t1,
               "critique/failed": run.feedback_failures(rollout),
               "sd/distilled_fraction": float(run.dist.sum(float(distilled))) / n}
    return Collected(rows.batch(run.tokenizer.pad_token_id), n, metrics, int(metrics["tokens/generated"]))


class EMATeacher:
    """SDPO's default teacher: an exponential moving average of the policy, updated after each
    optimizer step (theta_T <- (1 - rate) theta_T + rate theta) and kept in checkpoints."""

    def __init__(self, run):
        self.model = copy.deepcopy(run.model).requires_grad_(False)

    def state_dict(self):
        return {"ema_teacher": self.model.state_dict()}

    def load_state_dict(self, state):
        if "ema_teacher" not in state:
            raise ConfigError("this checkpoint has no EMA teacher (written with another sdpo teacher setting)")
        self.model.load_state_dict(state["ema_teacher"])

    def after_update(self, run):
        with run.full_weights():  # the whole updated policy (FSDP2 and ZeRO-3 hold shards)
            ema_update(self.model, run.model, run.config.ema_rate)


@contextmanager
def teacher_model(run):
    """The teacher's weights: the EMA copy, the frozen initial policy, or the policy itself."""
    teacher = run.config.teacher
    if teacher == "ema":
        yield run.method_state.model
    elif teacher == "initial":
        with run.reference_model() as ref:
            yield ref
    else:
        yield run.model


def sd_term_loss(run, batch):
    """The teacher (after each row's context) re-scores the student's answer; its next-token
    distributions are distilled into the student (after the question alone)."""
    c = run.config
    logits, _ = run.forward(batch)
    with torch.no_grad(), teacher_model(run) as teacher:
        teacher_logits, _ = run.forward(batch.with_context(), model=teacher)
    return sdpo_loss(logits, teacher_logits, batch.completion_ids, batch.completion_mask, c.distill, c.alpha,
                     c.topk, c.topk_tail, old_logp=batch.sampler_logprobs if c.is_clip else None,
                     is_clip=c.is_clip or None, aggregation=c.loss_aggregation)


def sd_idle(run):
    """In lockstep (FSDP2, ZeRO-3) an SD micro-batch with the live teacher runs two forwards of
    the sharded policy, the student's and the teacher's: the idle pass makes both. (The EMA and
    initial teachers are whole copies on every process: their forwards do not communicate.)"""
    loss = run.idle_loss()
    if run.config.teacher == "live":
        with torch.no_grad():
            run.idle_loss()
    return loss


register_method(Method(
    "sdpo", SDPOConfig, SDPO_PAPER, collect,
    {"rl": policy_gradient_term(coefficient=lambda c, step: 1.0 - c.sd_weight),
     "sd": LossTerm(sd_term_loss, coefficient=lambda c, step: c.sd_weight, idle=sd_idle)},
    needs_reference=lambda c: bool(c.kl_coef) or c.teacher == "initial",
    state=lambda run: EMATeacher(run) if run.config.teacher == "ema" else None,
    rollouts_per_step=lambda c: c.gradient_accumulation_steps))
