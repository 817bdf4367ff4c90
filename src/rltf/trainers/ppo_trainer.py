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

import torch

from rltf.algorithms import (AdaptiveKLController, dense_rewards, full_kl, gae, gather_logprobs, last_token_rewards,
                             length_weights, policy_gradient_loss, value_loss, whiten)
from rltf.rollout import RolloutBatch, SamplingParams, run_episodes
from rltf.feedback import build_span_feedback
from rltf.spans import SpanError, token_rewards
from rltf.tasks.base import mean_task_metrics
from rltf.trainers.base import Trainer
from rltf.trainers.forward import completion_forward
from rltf.trainers.sharding import idle_loss


def span_label_sum(report) -> float:
    """Sequence score of scalar PPO: +1 per located occurrence of a positive span, -1 per negative one."""
    return float(sum((1 if m.label == "positive" else -1) * len(m.ranges) for m in report.matches))


class PPOTrainer(Trainer):
    def init_state(self):
        c = self.config
        self.kl_ctl = AdaptiveKLController(c.kl_coef, c.kl_target, c.kl_horizon)

    # -- hooks ---------------------------------------------------------------------------------
    def make_feedback(self):
        c = self.config
        return build_span_feedback(c.feedback, self.backend, self.judge_config(), reward_model=c.reward_model,
                                   device=c.device)

    def build_extra_modules(self, model):
        head = torch.nn.Linear(model.config.hidden_size, 1)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        self.value_head = head.to(next(model.parameters()).device)
        return {"value_head": self.value_head}

    def idle_loss(self):
        loss, hidden = idle_loss(self.model, self.tokenizer.eos_token_id, hidden=True)
        return loss + self.value_head(hidden.float()).sum() * 0.0  # the value head's collectives too

    def extra_param_group_options(self, name):
        lr = self.config.value_learning_rate
        return {} if lr is None else {"lr": lr}

    def state_extras(self):
        return {"kl_coef_value": self.kl_ctl.value}

    def load_state_extras(self, state):
        self.kl_ctl.value = state.get("kl_coef_value", self.config.kl_coef)

    # -- rollout -------------------------------------------------------------------------------
    def make_batch(self, problems, seed):
        """Sample, critique and score this process's share of the step's ``problems``; the metrics
        are those of the whole step over every process, and so is the ``min_parsed_fraction`` rule."""
        c = self.config
        task, N = self.task, c.group_size
        lo, hi = self.dist.shard_bounds(len(problems), "prompts per step (prompts_per_step)")
        owners = [p for p in problems[lo:hi] for _ in range(N)]
        params = SamplingParams(max_new_tokens=c.max_new_tokens or task.max_new_tokens,
                                temperature=c.temperature, top_p=c.top_p)
        self.model.eval()
        t0 = time.perf_counter()
        with self.full_weights():  # the feedback may generate with the policy too (a local judge)
            episodes = run_episodes(task, problems[lo:hi], self.rollout_backend(), self.feedback, params,
                                    n_samples=N, rounds=1, seed=seed, first_key=lo * N)
            t1 = time.perf_counter()
            gens = [e.turns[0] for e in episodes]
            scores = [t.score for t in gens]
            critiques = self.feedback.critique_many([(task, p, g.text, s) for p, g, s in zip(owners, gens, scores)])
        kept, rewards, outcomes = [], [], []
        for k, (g, s, crit) in enumerate(zip(gens, scores, critiques)):
            outcome = {"reward": s.reward, "correct": s.correct, "tokens": len(g.token_ids), "text": g.text}
            outcomes.append(outcome)
            if crit.fallback or not g.token_ids:
                continue
            try:
                delta, report = token_rewards(g.text, crit.spans, self.tokenizer, token_ids=g.token_ids)
            except SpanError:
                continue
            if self.method.reward == "last_token":  # scalar PPO: the sequence score on the last token
                score = span_label_sum(report) if c.scalar_score == "span_sum" else s.reward
                delta = last_token_rewards(torch.tensor([score]), torch.ones(1, len(g.token_ids), dtype=torch.bool))[0]
            kept.append(k)
            rewards.append(delta)
            outcome.update(kept=True, not_found=len(report.not_found), labelled=report.labelled_fraction,
                           span_sum=span_label_sum(report))
        t2 = time.perf_counter()
        everyone = self.dist.gather(outcomes)  # the step's answers in global order
        done = [o for o in everyone if o.get("kept")]
        metrics = {
            "reward/task": sum(o["reward"] for o in everyone) / len(everyone),
            "accuracy/turn0": sum(o["correct"] for o in everyone) / len(everyone),
            "tokens/generated": float(sum(o["tokens"] for o in everyone)), "time/generate": t1 - t0,
            "time/feedback": t2 - t1, "feedback/failed": float(len(everyone) - len(done)),
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
            turn=[0] * len(kept), group=[lo + k // N for k in kept], pad_id=self.tokenizer.pad_token_id,
            sampler_logprobs=[gens[k].logprobs for k in kept], token_rewards=rewards)
        self.kept_per_rank = self.dist.gather_object(len(kept))  # where each process's rows sit in the step
        if done:
            with self.full_weights():  # no-grad scoring: each process runs its own number of passes
                metrics.update(self._advantages(batch))
            metrics["time/old_forward"] = time.perf_counter() - t2
        return batch, metrics, len(everyone)

    @torch.no_grad()
    def _advantages(self, batch: RolloutBatch) -> dict[str, float]:
        """Fill the batch's old log-probs, values and KL in one no-grad pass; then its rewards, GAE
        advantages and returns (whitened over every process's batch if asked). Called on every
        process when any has sequences (this one may have none)."""
        c = self.config
        device = next(self.model.parameters()).device
        logp, values, kl = (torch.zeros(batch.completion_ids.shape) for _ in range(3))
        for k, part in enumerate(batch.split(c.micro_batch_size)):
            part, lo = part.to(device), k * c.micro_batch_size
            logits, hidden = completion_forward(self.model, part, c.bf16_autocast, hidden=True)  # whole weights
            part_logp = gather_logprobs(logits, part.completion_ids)
            part_kl = torch.zeros_like(part_logp)
            if c.kl_coef:
                with self.reference_model() as ref:
                    ref_logits, _ = completion_forward(ref, part, c.bf16_autocast)
                part_kl = (full_kl(logits, ref_logits) if c.kl_estimator == "full"
                           else part_logp - gather_logprobs(ref_logits, part.completion_ids))
            rows, T = slice(lo, lo + len(part)), part.completion_ids.shape[1]
            on = part.completion_mask.cpu()
            logp[rows, :T] = part_logp.float().cpu() * on
            values[rows, :T] = self.value_head(hidden.float()).squeeze(-1).float().cpu() * on
            kl[rows, :T] = part_kl.float().cpu() * on
        mask = batch.completion_mask
        weights = length_weights(mask.shape[1], c.length_alpha, c.length_l0) if c.length_weight else None
        rewards = dense_rewards(batch.token_rewards, mask, kl, self.kl_ctl.value, weights)
        adv, returns = gae(rewards, values, mask, c.gamma, c.lam)
        m = mask.float()
        sums = self.dist.sum_dict({"sequences": float(len(batch)), "tokens": float(m.sum()),
                                   "adv": float((adv * m).sum()), "kl": float((kl * m).sum()),
                                   "rewards": float((rewards * m).sum()), "values": float((values * m).sum())})
        if c.whiten_advantages:
            if self.dist.enabled:  # the moments of every process's advantages
                mean = sums["adv"] / max(sums["tokens"], 1.0)
                var = self.dist.sum(float((((adv - mean) * m) ** 2).sum())) / max(sums["tokens"], 1.0)
                adv = whiten(adv, mask, mean=mean, var=var)
            else:
                adv = whiten(adv, mask)
        batch.old_logprobs, batch.values, batch.kl, batch.advantages, batch.returns = logp, values, kl, adv, returns
        n = max(sums["sequences"], 1.0)
        return {"kl/per_sequence": sums["kl"] / n, "kl/beta": self.kl_ctl.value,
                "reward/dense_mean": sums["rewards"] / n, "values/mean": sums["values"] / max(sums["tokens"], 1.0)}

    # -- update --------------------------------------------------------------------------------
    def train_step(self):
        c = self.config
        t_start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        problems = self.stream.take(c.prompts_per_step)
        seed = c.seed * 1_000_003 + (self.step + 1) * 101
        t0 = time.perf_counter()
        batch, metrics, _ = self.make_batch(problems, seed)
        metrics["time/rollout"] = time.perf_counter() - t0
        total = sum(self.kept_per_rank)  # the step's sequences over every process
        offset = sum(self.kept_per_rank[:self.dist.rank])  # this process's first one among them
        if total:  # the adaptive KL coefficient follows this rollout's KL, for the next rollout's rewards
            self.kl_ctl.update(metrics["kl/per_sequence"], total)
        t1 = time.perf_counter()
        sums: dict[str, float] = {}
        n_updates, norms = 0, []
        order_rng = torch.Generator().manual_seed(seed)
        for _ in range(c.ppo_epochs if total else 0):
            order = torch.randperm(total, generator=order_rng)  # minibatches of the global batch
            for lo in range(0, total, c.mini_batch_size):
                chosen = order[lo:lo + c.mini_batch_size].tolist()
                minibatch = batch.select([g - offset for g in chosen if offset <= g < offset + len(batch)])
                stats = self._accumulate(minibatch, len(chosen), 1.0)
                norms.append(self._apply_gradients())
                n_updates += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
        metrics.update({k: v / max(n_updates, 1) for k, v in sums.items()})
        metrics.update({"time/backward": time.perf_counter() - t1, "ppo/updates": float(n_updates),
                        "grad_norm": sum(norms) / len(norms) if norms else 0.0})
        self.scheduler.step()
        return self._finish_step(metrics, t_start, int(metrics["tokens/generated"]))

    def sequence_loss(self, kind, batch):
        c = self.config
        logits, hidden = completion_forward(self.model, batch, c.bf16_autocast, hidden=True,
                                           shared_prefix=self.shared_prefix)
        logp = gather_logprobs(logits, batch.completion_ids)
        values = self.value_head(hidden.float()).squeeze(-1)
        mask = batch.completion_mask
        # the rollout's own policy (the trainer's log-probs before this update) over its sampler
        weights, is_stats = self.sampler_correction(batch.old_logprobs, batch)
        pg, pg_stats = policy_gradient_loss(logp, batch.advantages, mask, old_logp=batch.old_logprobs,
                                            clip_eps=c.clip_eps, aggregation=c.loss_aggregation, is_weights=weights)
        pg_stats.update(is_stats)
        vl, v_stats = value_loss(values, batch.values, batch.returns, mask, c.value_clip, c.loss_aggregation)
        return pg + c.vf_coef * vl, {**pg_stats, **v_stats, "policy_loss": pg.item(), "value_loss": vl.item()}
