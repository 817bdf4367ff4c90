"""Text2Grad span-level PPO and the scalar-reward PPO baseline (METHODS §2.4).

One step: sample answers; ask the span feedback provider (programmatic critic, judge, or span
reward model) for a critique with labelled spans; align the spans to the sampled tokens
(:func:`rltf.spans.token_rewards`); one no-grad forward gives the old log-probs, the values and the
KL to the reference; rewards r_t = delta_t * w_t - beta * KL_t; GAE; whitening; then
``ppo_epochs`` passes of clipped policy + value loss over shuffled minibatches, one optimizer step
per minibatch.

``span-ppo`` puts delta on the tokens of the spans. ``scalar-ppo`` puts the sequence score (the sum
of the located span labels, or the task reward) on the last response token: the ONLY difference.
An answer whose feedback failed (timeout, unparseable reward-model output) gets no reward and is
left out of the update; if fewer than ``min_parsed_fraction`` of the answers have feedback, the
update is skipped for that step (the reference's rule).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from rltf.algorithms import (AdaptiveKLController, dense_rewards, full_kl, gae, gather_logprobs, last_token_rewards,
                             length_weights, policy_gradient_loss, value_loss, whiten)
from rltf.algorithms.losses import AGGREGATIONS
from rltf.engine.config import TrainConfig
from rltf.engine.config_fields import arg
from rltf.engine.forward import completion_forward
from rltf.engine.parts import Collected, LossTerm, Method
from rltf.feedback import SPAN_KINDS, build_span_feedback
from rltf.methods.registry import register_method
from rltf.rollout import RolloutBatch
from rltf.spans import SpanError, token_rewards
from rltf.tasks.base import mean_task_metrics

TEXT2GRAD_PAPER = "Text2Grad: critiques aligned to token spans become per-token rewards for span-level PPO."
PPO_PAPER = "Schulman et al., Proximal Policy Optimization Algorithms, 2017 (scalar-reward baseline)."
KL_ESTIMATORS = ("full", "kl")
SCALAR_SCORES = ("span_sum", "task")


@dataclass
class SpanPPOConfig(TrainConfig):
    """Text2Grad span-level PPO: critique spans become per-token rewards; PPO with a value head and GAE."""

    method: str = arg("span-ppo", "training method (set by the command)")
    feedback: str = arg("critic", "who labels spans: critic (programmatic), judge (OpenAI-compatible endpoint), "
                                  "local (local judge model), reward-model (a trained span reward model), "
                                  "human (people's stored spans, see human_feedback)",
                        choices=SPAN_KINDS, plugin=True)
    reward_model: str | None = arg(None, "directory of a span reward model (feedback=reward-model)")
    prompts_per_step: int = arg(32, "prompts sampled per step (the reference: batch 32)", ge=1)
    group_size: int = arg(1, "answers sampled per prompt", ge=1)
    temperature: float = arg(0.6, "sampling temperature (the reference: 0.6)", ge=0)
    top_p: float = arg(0.9, "nucleus sampling (the reference: 0.9)", gt=0, le=1)
    learning_rate: float = arg(1e-5, "policy learning rate (the reference: 1e-5)", ge=0)
    value_learning_rate: float | None = arg(None, "value head learning rate (default: learning_rate)", ge=0)
    kl_coef: float = arg(0.2, "initial KL coefficient beta (the reference: 0.2)", ge=0)
    kl_estimator: str = arg("full", "full (KL over the whole vocabulary) or kl (logp - logp_ref of the sampled token)",
                            choices=KL_ESTIMATORS)
    kl_target: float | None = arg(6.0, "adaptive KL target per sequence (None = fixed beta)", gt=0)
    kl_horizon: int = arg(10_000, "adaptive KL horizon, in sequences", ge=1)
    gamma: float = arg(1.0, "GAE discount (the reference: 1)", ge=0, le=1)
    lam: float = arg(0.95, "GAE lambda (the reference: 0.95)", ge=0, le=1)
    clip_eps: float = arg(0.2, "PPO policy ratio clip (the reference: 0.2)", gt=0)
    value_clip: float = arg(0.2, "value clip around the rollout's values (the reference: 0.2)", gt=0)
    vf_coef: float = arg(0.1, "weight of the value loss (the reference: 0.1)", ge=0)
    ppo_epochs: int = arg(4, "passes over each rollout batch (the reference: 4)", ge=1)
    mini_batch_size: int = arg(8, "sequences per optimizer step within a PPO epoch", ge=1)
    whiten_advantages: bool = arg(True, "whiten advantages over the batch's response tokens")
    length_weight: bool = arg(False, "weight token rewards by 1/(1+exp(alpha(t-L0)-6)) (long summaries)")
    length_alpha: float = arg(1.0, "alpha of the length weight", gt=0)
    length_l0: float = arg(48.0, "suggested length L0 of the length weight, in tokens", gt=0)
    scalar_score: str = arg("span_sum", "scalar-ppo's sequence score: span_sum (sum of located span labels) or "
                                        "task (the task's reward)", choices=SCALAR_SCORES)
    task_reward_weight: float = arg(0.0, "add this times the task's reward (its verifier) to the last token, for "
                                         "span-ppo and scalar-ppo alike: counts what spans cannot mark (an omission); "
                                         "0 = the spans only (Text2Grad)", ge=0)
    min_parsed_fraction: float = arg(0.5, "skip the update when fewer answers than this got usable span feedback",
                                     ge=0, le=1)
    loss_aggregation: str = arg("token-mean", "token-mean (PPO default), sum or seq-mean-token-mean",
                                choices=AGGREGATIONS)
    lora_r: int = arg(16, "LoRA rank (the reference: 16)", ge=1)
    lora_alpha: int = arg(32, "LoRA alpha (the reference: 32)", gt=0)


@dataclass
class ScalarPPOConfig(SpanPPOConfig):
    """The scalar-reward PPO baseline: the same PPO, with the sequence score on the last token only."""

    method: str = arg("scalar-ppo", "training method (set by the command)")


def span_label_sum(report) -> float:
    """Sequence score of scalar PPO: +1 per located occurrence of a positive span, -1 per negative one."""
    return float(sum((1 if m.label == "positive" else -1) * len(m.ranges) for m in report.matches))


# -- collection ------------------------------------------------------------------------------
def collect(run, problems, seed: int) -> Collected:
    """Sample, critique and score this process's share of the step's ``problems``; the metrics
    are those of the whole step over every process, and so is the ``min_parsed_fraction`` rule.
    The rollout's KL then moves the adaptive KL coefficient, for the next rollout's rewards."""
    c, task, N = run.config, run.task, run.config.group_size

    def critique(owned, episodes):  # with the weights gathered: the feedback may generate with the policy
        owners = [p for p in owned for _ in range(N)]
        return run.feedback.critique_many([(task, p, e.turns[0].text, e.turns[0].score)
                                           for p, e in zip(owners, episodes)])

    rollout = run.roll_out(problems, seed, N, 1, inside=critique)
    t2 = time.perf_counter()
    lo, gens = rollout.first, [e.turns[0] for e in rollout.episodes]
    kept, rewards, outcomes = [], [], []
    for k, (g, crit) in enumerate(zip(gens, rollout.extra)):
        outcome = {"reward": g.score.reward, "correct": g.score.correct, "tokens": len(g.token_ids), "text": g.text}
        outcomes.append(outcome)
        if crit.fallback or not g.token_ids:
            continue
        try:
            delta, report = token_rewards(g.text, crit.spans, run.tokenizer, token_ids=g.token_ids)
        except SpanError:
            continue
        answer = torch.ones(1, len(g.token_ids), dtype=torch.bool)  # last_token_rewards' mask for this answer
        if run.method.reward == "last_token":  # scalar PPO: the sequence score on the last token
            score = span_label_sum(report) if c.scalar_score == "span_sum" else g.score.reward
            delta = last_token_rewards(torch.tensor([score]), answer)[0]
        if c.task_reward_weight:  # the verifier's reward on the last token, beside the spans (both methods)
            delta = delta + last_token_rewards(torch.tensor([c.task_reward_weight * g.score.reward]), answer)[0]
        kept.append(k)
        rewards.append(delta)
        outcome.update(kept=True, not_found=len(report.not_found), labelled=report.labelled_fraction,
                       span_sum=span_label_sum(report))
    everyone = run.dist.gather(outcomes)  # the step's answers in global order
    done = [o for o in everyone if o.get("kept")]
    metrics = {
        "reward/task": sum(o["reward"] for o in everyone) / len(everyone),
        "accuracy/turn0": sum(o["correct"] for o in everyone) / len(everyone),
        "tokens/generated": float(sum(o["tokens"] for o in everyone)), "time/generate": rollout.generate_seconds,
        "time/feedback": rollout.feedback_seconds, "feedback/failed": float(len(everyone) - len(done)),
        "spans/not_found": float(sum(o["not_found"] for o in done)),
    }
    all_owners = [p for p in problems for _ in range(N)]
    metrics.update({f"task/{k}": v for k, v in
                    mean_task_metrics(task, all_owners, [o["text"] for o in everyone]).items()})
    if done:
        metrics["reward/span_sum"] = sum(o["span_sum"] for o in done) / len(done)
        metrics["spans/labelled_fraction"] = sum(o["labelled"] for o in done) / len(done)
    if len(done) < c.min_parsed_fraction * len(everyone):
        kept, rewards, done = [], [], []
        metrics["ppo/skipped"] = 1.0
    batch = RolloutBatch.from_sequences(
        [gens[k].prompt_ids for k in kept], [gens[k].token_ids for k in kept], kind=["ppo"] * len(kept),
        turn=[0] * len(kept), group=[lo + k // N for k in kept], pad_id=run.tokenizer.pad_token_id,
        sampler_logprobs=[gens[k].logprobs for k in kept], token_rewards=rewards)
    rows_per_rank = run.dist.gather_object(len(kept))  # where each process's rows sit in the step
    total = sum(rows_per_rank)
    if done:
        with run.full_weights():  # no-grad scoring: each process runs its own number of passes
            metrics.update(score_rollout(run, batch))
        metrics["time/old_forward"] = time.perf_counter() - t2
    if total:  # the adaptive KL coefficient follows this rollout's KL, for the next rollout's rewards
        run.method_state.kl.update(metrics["kl/per_sequence"], total)
    metrics["ppo/updates"] = float(c.ppo_epochs * -(-total // c.mini_batch_size)) if total else 0.0
    return Collected(batch, len(everyone), metrics, int(metrics["tokens/generated"]), rows_per_rank)


@torch.no_grad()
def score_rollout(run, batch: RolloutBatch) -> dict[str, float]:
    """Fill the batch's old log-probs, values and KL in one no-grad pass; then its rewards, GAE
    advantages and returns (whitened over every process's batch if asked). Called on every
    process when any has sequences (this one may have none)."""
    c = run.config
    value_head = run.heads["value_head"]
    device = next(run.model.parameters()).device
    logp, values, kl = (torch.zeros(batch.completion_ids.shape) for _ in range(3))
    for k, part in enumerate(batch.split(c.micro_batch_size)):
        part, lo = part.to(device), k * c.micro_batch_size
        # whole weights, one model call per micro-batch
        logits, hidden = completion_forward(run.model, part, run.autocast_bf16, hidden=True)
        part_logp = gather_logprobs(logits, part.completion_ids)
        part_kl = torch.zeros_like(part_logp)
        if c.kl_coef:
            with run.reference_model() as ref:
                ref_logits, _ = completion_forward(ref, part, run.autocast_bf16)
            part_kl = (full_kl(logits, ref_logits) if c.kl_estimator == "full"
                       else part_logp - gather_logprobs(ref_logits, part.completion_ids))
        rows, T = slice(lo, lo + len(part)), part.completion_ids.shape[1]
        on = part.completion_mask.cpu()
        logp[rows, :T] = part_logp.float().cpu() * on
        values[rows, :T] = value_head(hidden.float()).squeeze(-1).float().cpu() * on
        kl[rows, :T] = part_kl.float().cpu() * on
    mask = batch.completion_mask
    weights = length_weights(mask.shape[1], c.length_alpha, c.length_l0) if c.length_weight else None
    rewards = dense_rewards(batch.token_rewards, mask, kl, run.method_state.kl.value, weights)
    adv, returns = gae(rewards, values, mask, c.gamma, c.lam)
    m = mask.float()
    sums = run.dist.sum_dict({"sequences": float(len(batch)), "tokens": float(m.sum()),
                              "adv": float((adv * m).sum()), "kl": float((kl * m).sum()),
                              "rewards": float((rewards * m).sum()), "values": float((values * m).sum())})
    if c.whiten_advantages:
        if run.dist.enabled:  # the moments of every process's advantages
            mean = sums["adv"] / max(sums["tokens"], 1.0)
            var = run.dist.sum(float((((adv - mean) * m) ** 2).sum())) / max(sums["tokens"], 1.0)
            adv = whiten(adv, mask, mean=mean, var=var)
        else:
            adv = whiten(adv, mask)
    batch.old_logprobs, batch.values, batch.kl, batch.advantages, batch.returns = logp, values, kl, adv, returns
    n = max(sums["sequences"], 1.0)
    return {"kl/per_sequence": sums["kl"] / n, "kl/beta": run.method_state.kl.value,
            "reward/dense_mean": sums["rewards"] / n, "values/mean": sums["values"] / max(sums["tokens"], 1.0)}


def minibatches(run, collected: Collected, seed: int):
    """``ppo_epochs`` passes over the step's global batch in shuffled minibatches: this process's
    rows of each, and the minibatch's global size (its loss normaliser)."""
    c, batch = run.config, collected.batch
    total = sum(collected.rows_per_rank)  # the step's sequences over every process
    offset = sum(collected.rows_per_rank[:run.dist.rank])  # this process's first one among them
    order_rng = torch.Generator().manual_seed(seed)
    for _ in range(c.ppo_epochs if total else 0):
        order = torch.randperm(total, generator=order_rng)  # minibatches of the global batch
        for lo in range(0, total, c.mini_batch_size):
            chosen = order[lo:lo + c.mini_batch_size].tolist()
            yield batch.select([g - offset for g in chosen if offset <= g < offset + len(batch)]), len(chosen)


# -- the loss term, the value head and the adaptive KL coefficient ------------------------------
def ppo_term_loss(run, batch):
    """Clipped policy loss on the token advantages + vf_coef x the clipped value loss."""
    c = run.config
    logits, hidden = run.forward(batch, hidden=True)
    logp = gather_logprobs(logits, batch.completion_ids)
    values = run.heads["value_head"](hidden.float()).squeeze(-1)
    mask = batch.completion_mask
    # the rollout's own policy (the trainer's log-probs before this update) over its sampler
    weights, is_stats = run.sampler_correction(batch.old_logprobs, batch)
    pg, pg_stats = policy_gradient_loss(logp, batch.advantages, mask, old_logp=batch.old_logprobs,
                                        clip_eps=c.clip_eps, aggregation=c.loss_aggregation, is_weights=weights)
    pg_stats.update(is_stats)
    vl, v_stats = value_loss(values, batch.values, batch.returns, mask, c.value_clip, c.loss_aggregation)
    return pg + c.vf_coef * vl, {**pg_stats, **v_stats, "policy_loss": pg.item(), "value_loss": vl.item()}


def value_head(model, config) -> dict[str, torch.nn.Module]:
    """A linear value head on the policy's last hidden states, initialised to 0."""
    head = torch.nn.Linear(model.config.hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return {"value_head": head.to(next(model.parameters()).device)}


class AdaptiveKL:
    """The adaptive KL coefficient beta (kept in checkpoints)."""

    def __init__(self, run):
        c = run.config
        self.kl, self.initial = AdaptiveKLController(c.kl_coef, c.kl_target, c.kl_horizon), c.kl_coef

    def state_dict(self):
        return {"kl_coef_value": self.kl.value}

    def load_state_dict(self, state):
        self.kl.value = state.get("kl_coef_value", self.initial)

    def after_update(self, run):
        pass  # beta moves once per rollout (in collect), not per optimizer step


_PPO = dict(heads=value_head, state=AdaptiveKL, minibatches=minibatches,
            head_options=lambda c, name: {} if c.value_learning_rate is None else {"lr": c.value_learning_rate},
            feedback=lambda run: build_span_feedback(run.config.feedback, run.backend, run.judge_config(),
                                                     reward_model=run.config.reward_model, device=run.config.device))
register_method(Method("span-ppo", SpanPPOConfig, TEXT2GRAD_PAPER, collect, {"ppo": LossTerm(ppo_term_loss)},
                       reward="spans", **_PPO))
register_method(Method("scalar-ppo", ScalarPPOConfig, PPO_PAPER, collect, {"ppo": LossTerm(ppo_term_loss)},
                       reward="last_token", **_PPO))
