"""The RLTF family: single-turn GRPO, multi-turn GRPO, RLTF-SD, RLTF-FM and RLTF-SD+FM (METHODS §1),
and SCoRe's revision reward as options of the two-turn methods (METHODS §3.3).

One rollout per step: N episodes per prompt, two turns except for ``grpo``. Its rows feed up to
three loss terms (``kind``), summed:

- ``rl``: (x0, y0) with the group-centred advantage of G0 (of r0 for ``grpo``) and, for the
  two-turn methods, (x1, y1) with the group-centred advantage of G1 over the episodes that reached
  turn 2. Policy gradient on answer tokens, summed over tokens.
- ``sd`` (RLTF-SD): (x0, y1) with A = r1 - b0 (first-turn baseline); tokens of y1 with
  log pi(y1_t|x0) < threshold get advantage 0; coefficient lambda_SD (optionally ramped).
- ``fm`` (RLTF-FM): (f_FM(x0, y0), c0): negative log-likelihood of the critique tokens; coefficient
  lambda_FM.

With ``offline_data`` the methods train on stored records instead of sampling: rltf-fm the FM term
on people's critiques, rltf-sd the SD term on their corrected answers (``revision``), rltf-sd+fm both.

Every term is summed over its tokens and sequences and divided by the number of episodes G*N.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rltf.algorithms import (fm_loss, group_centered_advantages, multiturn_returns, sd_advantages, sd_loss,
                             sd_token_mask, zero_advantage_skip_is_exact)
from rltf.algorithms.losses import SD_MODES
from rltf.algorithms.refinement import revision_bonus_returns
from rltf.engine.config_fields import arg
from rltf.engine.data import ProblemStream, RecordStream
from rltf.engine.parts import Collected, LossTerm, Method
from rltf.errors import ConfigError, DataError
from rltf.feedback.prompts import FM_TEMPLATE
from rltf.feedback.records import read_annotations
from rltf.methods.common import EpisodeOutcome, RLTFFamilyConfig, outcome_metrics, policy_gradient_term
from rltf.methods.registry import register_method
from rltf.rollout import BatchRows

SD_BASELINES = ("first", "second")
OFFLINE_HELP = ("annotation records (JSONL from `rltf label-studio import` or `rltf annotate`): train on them instead "
                "of sampling (the RL term needs samples and is off): the FM term on their answers and people's "
                "critiques (rltf-fm), the SD term on people's corrected answers, the record's `revision` "
                "(rltf-sd), or both (rltf-sd+fm); held-out evaluation still uses task")
RLTF_PAPER = "RL from Text Feedback (RLTF): two-turn episodes with self-distillation (SD) or feedback modelling (FM)."
GRPO_PAPER = ("Shao et al., DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models "
              "(GRPO), 2024.")
SCORE_PAPER = ("Kumar et al., Training Language Models to Self-Correct via Reinforcement Learning (SCoRe), 2024 "
               "(arXiv 2409.12917): revision bonus and first-turn KL anchor.")


@dataclass
class GRPOConfig(RLTFFamilyConfig):
    """Single-turn GRPO: N samples per prompt, group-centred scalar reward."""

    method: str = arg("grpo", "training method (set by the command)")


@dataclass
class MultiTurnGRPOConfig(RLTFFamilyConfig):
    """Two-turn episodes with only the multi-turn RL term."""

    method: str = arg("multiturn-grpo", "training method (set by the command)")
    gamma: float = arg(0.1, "discount of the second turn's reward in G0 = r0 + gamma * r1", ge=0, le=1)
    revision_bonus: float = arg(0.0, "SCoRe's alpha: the revision's return becomes r1 + alpha * (r1 - r0), so a "
                                     "revision that repeats its first answer gains nothing and one that breaks a "
                                     "right answer loses (0 = off; SCoRe: 10)", ge=0)
    first_turn_kl: float = arg(0.0, "SCoRe's anchor: a KL penalty to the initial policy on FIRST-turn tokens only, "
                                    "added to kl_coef (SCoRe Stage I: 0.1), so the first answer cannot drift to "
                                    "game the revision bonus (0 = off)", ge=0)
    revise_correct: bool = arg(False, "also critique and revise correct first answers (SCoRe: every episode gets a "
                                      "second turn, so breaking a right answer is seen and penalised)")
    score_stage1_steps: int = arg(0, "SCoRe Stage I: for this many first steps the first turn gets no return "
                                     "(only its KL anchor) and training improves the revision alone", ge=0)


@dataclass
class RLTFSDConfig(MultiTurnGRPOConfig):
    """Multi-turn RL + self-distillation of revisions into the single-turn policy."""

    method: str = arg("rltf-sd", "training method (set by the command)")
    lambda_sd: float = arg(0.1, "weight of the SD term", ge=0)
    sd_ramp_steps: int = arg(0, "ramp lambda_sd linearly from 0 over this many steps (0 = no ramp)", ge=0)
    sd_mode: str = arg("awr", "awr (method), clipped_is or rejection (ablations)", choices=SD_MODES)
    sd_baseline: str = arg("first", "first-turn baseline b0 (method) or second (ablation)", choices=SD_BASELINES)
    sd_mask_threshold: float = arg(-5.0, "y1 tokens with log pi(y1_t|x0) below this get advantage 0", le=0)
    offline_data: str | None = arg(None, OFFLINE_HELP)

    def check(self):
        if self.offline_data and self.sd_mode == "clipped_is":
            raise ConfigError("sd_mode clipped_is needs the sampler's log-probs of each revision, which stored "
                              "records do not have: use awr or rejection with offline_data")


@dataclass
class RLTFFMConfig(MultiTurnGRPOConfig):
    """Multi-turn RL + feedback modelling: predict the critique as an auxiliary loss."""

    method: str = arg("rltf-fm", "training method (set by the command)")
    critique_max_tokens: int = arg(128, "longest critique kept as an FM target, in tokens", ge=1)
    fm_train_on_fallback: bool = arg(False, "also train the FM term on fallback critiques (the correctness-only "
                                            "text that stands in when a judge failed); off: they are left out "
                                            "and counted as fm/fallback_critiques")
    lambda_fm: float = arg(0.1, "weight of the FM term", ge=0)
    offline_data: str | None = arg(None, OFFLINE_HELP)


@dataclass
class RLTFSDFMConfig(RLTFSDConfig, RLTFFMConfig):
    """Both auxiliary terms."""

    method: str = arg("rltf-sd+fm", "training method (set by the command)")


# -- collection ------------------------------------------------------------------------------
def returns(config, step: int, r0: torch.Tensor, r1: torch.Tensor,
            reached: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-turn returns (G0, G1) [G, N]: G0 = r0 + gamma r1, G1 = r1 (METHODS §1); with SCoRe's
    ``revision_bonus`` alpha G1 = r1 + alpha (r1 - r0); in SCoRe's Stage I (the first
    ``score_stage1_steps`` steps) G0 = 0."""
    c = config
    g0, g1 = multiturn_returns(r0, r1, reached, c.gamma)
    if c.revision_bonus:
        _, g1 = revision_bonus_returns(r0, r1, reached, c.revision_bonus)
    if step < c.score_stage1_steps:
        g0 = torch.zeros_like(g0)
    return g0, g1


def collect(run, problems, seed: int) -> Collected:
    """Roll out this process's share of the step's ``problems`` (whole groups) and build its rows;
    the metrics and the number of episodes are those of the whole step, over every process."""
    c, method = run.config, run.method
    N, two_turn = c.group_size, method.turns > 1
    rollout = run.roll_out(problems, seed, N, method.turns, revision=c.revision_prompt,
                           stop_when_correct=not (two_turn and c.revise_correct))
    episodes, lo, G = rollout.episodes, rollout.first, len(rollout.problems)
    r0 = torch.tensor([e.turns[0].reward for e in episodes]).view(G, N)
    reached = torch.tensor([len(e.turns) > 1 for e in episodes]).view(G, N)
    r1 = torch.tensor([e.turns[1].reward if len(e.turns) > 1 else 0.0 for e in episodes]).view(G, N)
    if two_turn:
        g0, g1 = returns(c, run.step, r0, r1, reached)
        a0 = group_centered_advantages(g0, std_normalize=c.std_normalize)
        a1 = group_centered_advantages(g1, reached, std_normalize=c.std_normalize)
    else:
        a0 = group_centered_advantages(r0, std_normalize=c.std_normalize)
    a_sd = sd_advantages(r0, r1, reached, c.sd_baseline) if method.uses("sd") else None
    rows, fm_fallbacks = BatchRows(), 0
    for k, e in enumerate(episodes):
        g, i = divmod(k, N)
        first = e.turns[0]
        rows.add("rl", first.prompt_ids, first.token_ids, turn=0, group=lo + g, advantage=a0[g, i],
                 sampler_logprobs=first.logprobs)
        if len(e.turns) > 1:
            second = e.turns[1]
            rows.add("rl", second.prompt_ids, second.token_ids, turn=1, group=lo + g, advantage=a1[g, i],
                     sampler_logprobs=second.logprobs)
            if a_sd is not None:  # the revision as a target of the single-turn prompt
                rows.add("sd", first.prompt_ids, second.token_ids, turn=1, group=lo + g, advantage=a_sd[g, i],
                         sampler_logprobs=second.logprobs)
        if method.uses("fm") and e.critiques:
            if e.critiques[0].fallback and not c.fm_train_on_fallback:
                fm_fallbacks += 1  # a judge failure's stand-in text is not the judge's critique: no target
            else:
                prompt, target = fm_target(run, run.task.format_question(rollout.problems[g]), first.text,
                                           e.critiques[0].text)
                rows.add("fm", prompt, target, turn=0, group=lo + g, advantage=1.0)
    # the step's metrics from every process's episodes, in the order one process would hold them
    outcomes = run.dist.gather([EpisodeOutcome.of(e) for e in episodes])
    metrics = {**outcome_metrics(outcomes), "time/generate": rollout.generate_seconds,
               "critique/failed": run.feedback_failures(rollout)}
    if method.uses("sd"):
        metrics["sd/lambda"] = lambda_sd(c, run.step)
    if method.uses("fm"):
        metrics["fm/fallback_critiques"] = float(run.dist.sum(float(fm_fallbacks)))
    return Collected(rows.batch(run.tokenizer.pad_token_id), len(outcomes), metrics,
                     int(metrics["tokens/generated"]))


def fm_target(run, question: str, answer: str, critique: str) -> tuple[list[int], list[int]]:
    """(prompt, target) token ids of the FM sequence: f_FM(x0, y0) -> the critique (capped) + EOS."""
    prompt = FM_TEMPLATE.format(question=question, answer=answer.strip())
    prompt_ids = run.chat_prompt_ids([{"role": "user", "content": prompt}])
    target = run.tokenizer(critique.strip(), add_special_tokens=False)["input_ids"][: run.config.critique_max_tokens]
    return prompt_ids, list(target) + [run.tokenizer.eos_token_id]


def offline_stream(run, position: int):
    """The task's problems, or with ``offline_data`` the stored records the method can learn from:
    those with a critique (FM) or a corrected answer, ``revision`` (SD)."""
    path = run.config.offline_data
    if not path:
        return ProblemStream(run.task, run.config.seed, position)
    fm, sd = run.method.uses("fm"), run.method.uses("sd")
    usable = [r for r in read_annotations(path)
              if (fm and r["critique"].strip()) or (sd and isinstance(r.get("revision"), str) and r["revision"].strip())]
    if not usable:
        wanted = " or ".join(w for w, on in (("a critique", fm), ("a corrected answer (`revision`)", sd)) if on)
        raise DataError(f"{path}: no record has {wanted} to learn")
    return RecordStream(usable, run.config.seed, position)


def collect_any(run, items, seed: int) -> Collected:
    """Online, as :func:`collect`; with ``offline_data`` this process's share of the step's stored
    records, no sampling: an FM row for each critique (rltf-fm), an SD row for each corrected answer
    (rltf-sd: the question -> the revision, advantage 1, as rejection sampling weighs a correct one)."""
    if not run.config.offline_data:
        return collect(run, items, seed)
    lo, hi = run.dist.shard_bounds(len(items), "records per step (prompts_per_step)")
    rows, counts = BatchRows(), {"fm": 0, "sd": 0}
    for k, r in enumerate(items[lo:hi]):
        if run.method.uses("fm") and r["critique"].strip():
            prompt, target = fm_target(run, r["prompt"], r["answer"], r["critique"])
            rows.add("fm", prompt, target, turn=0, group=lo + k, advantage=1.0)
            counts["fm"] += 1
        revision = r.get("revision")
        if run.method.uses("sd") and isinstance(revision, str) and revision.strip():
            ids = run.tokenizer(revision.strip(), add_special_tokens=False)["input_ids"]
            rows.add("sd", run.chat_prompt_ids([{"role": "user", "content": r["prompt"]}]),
                     list(ids) + [run.tokenizer.eos_token_id], turn=1, group=lo + k, advantage=1.0)
            counts["sd"] += 1
    summed = run.dist.sum_dict({k: float(v) for k, v in counts.items()})
    metrics = {"offline/records": float(len(items)), "offline/fm_rows": summed["fm"], "offline/sd_rows": summed["sd"],
               "tokens/generated": 0.0}
    if run.method.uses("sd"):
        metrics["sd/lambda"] = lambda_sd(run.config, run.step)
    return Collected(rows.batch(run.tokenizer.pad_token_id), len(items), metrics, 0)


# -- loss terms ------------------------------------------------------------------------------
def lambda_sd(config, step: int) -> float:
    """lambda_SD at ``step``: constant, or ramped linearly from 0 over ``sd_ramp_steps``."""
    if config.sd_ramp_steps:
        return config.lambda_sd * min(1.0, step / config.sd_ramp_steps)
    return config.lambda_sd


def sd_term_loss(run, batch):
    """RLTF-SD: the revision y1 as a target of the single-turn prompt x0, tokens far off its support masked."""
    c = run.config
    logp = run.logprobs(batch)
    keep, masked = sd_token_mask(logp, batch.completion_mask, c.sd_mask_threshold)
    loss = sd_loss(logp, batch.advantages, keep, c.sd_mode, logp_x1=batch.sampler_logprobs,
                   aggregation=c.loss_aggregation)
    return loss, {"masked_fraction": float(masked)}


def fm_term_loss(run, batch):
    """RLTF-FM: the negative log-likelihood of the critique tokens."""
    return fm_loss(run.logprobs(batch), batch.completion_mask, run.config.loss_aggregation), {}


def has_kl_term(config) -> bool:
    """A KL term to the initial policy: kl_coef, or SCoRe's first-turn anchor."""
    return bool(config.kl_coef or config.first_turn_kl)


def first_turn_kl(config, batch):
    """The KL coefficient of each rl row: kl_coef, plus first_turn_kl on first turns (SCoRe's anchor)."""
    if not config.first_turn_kl:
        return config.kl_coef
    return config.kl_coef + config.first_turn_kl * (batch.turn == 0).float().to(batch.completion_ids.device)


def cite(config) -> str:
    """The RLTF paper, and SCoRe's when its options (a revision bonus or a first-turn KL anchor) shaped the run."""
    return RLTF_PAPER + (" " + SCORE_PAPER if config.revision_bonus or config.first_turn_kl else "")


RL = policy_gradient_term()
RL_TWO_TURN = policy_gradient_term(first_turn_kl,
                                   lambda c: zero_advantage_skip_is_exact(c.loss_aggregation, float(has_kl_term(c))))
SD = LossTerm(sd_term_loss, coefficient=lambda c, step: lambda_sd(c, step),
              skip_zero_advantage=lambda c: c.sd_mode != "rejection" and zero_advantage_skip_is_exact(c.loss_aggregation))
FM = LossTerm(fm_term_loss, coefficient=lambda c, step: c.lambda_fm)
_GROUP = dict(rollouts_per_step=lambda c: c.gradient_accumulation_steps)
_TWO_TURN = dict(_GROUP, turns=2, cite=cite, needs_reference=has_kl_term)

register_method(Method("grpo", GRPOConfig, GRPO_PAPER, collect, {"rl": RL}, **_GROUP))
register_method(Method("multiturn-grpo", MultiTurnGRPOConfig, RLTF_PAPER, collect, {"rl": RL_TWO_TURN}, **_TWO_TURN))
register_method(Method("rltf-sd", RLTFSDConfig, RLTF_PAPER, collect_any, {"rl": RL_TWO_TURN, "sd": SD},
                       stream=offline_stream, **_TWO_TURN))
register_method(Method("rltf-fm", RLTFFMConfig, RLTF_PAPER, collect_any, {"rl": RL_TWO_TURN, "fm": FM},
                       stream=offline_stream, **_TWO_TURN))
register_method(Method("rltf-sd+fm", RLTFSDFMConfig, RLTF_PAPER, collect_any, {"rl": RL_TWO_TURN, "sd": SD, "fm": FM},
                       stream=offline_stream, **_TWO_TURN))
