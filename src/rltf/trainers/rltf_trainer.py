"""The RLTF family: single-turn GRPO, multi-turn GRPO, RLTF-SD, RLTF-FM and RLTF-SD+FM (METHODS §1).

One rollout per step: N episodes per prompt, two turns except for ``grpo``. The trainer builds
one :class:`~rltf.rollout.RolloutBatch` whose rows feed three loss terms (``kind``), and sums them:

- ``rl``: (x0, y0) with the group-centred advantage of G0 (of r0 for ``grpo``) and, for the
  two-turn methods, (x1, y1) with the group-centred advantage of G1 over the episodes that reached
  turn 2. Policy gradient on answer tokens, summed over tokens.
- ``sd`` (RLTF-SD): (x0, y1) with A = r1 - b0 (first-turn baseline); tokens of y1 with
  log pi(y1_t|x0) < threshold get advantage 0; weight lambda_SD (optionally ramped).
- ``fm`` (RLTF-FM): (f_FM(x0, y0), c0): negative log-likelihood of the critique tokens; weight lambda_FM.

Every term is summed over its tokens and sequences and divided by the number of episodes G*N.
"""
from __future__ import annotations

import time

import torch

from rltf.algorithms import (fm_loss, group_centered_advantages, multiturn_returns, policy_gradient_loss, sd_advantages,
                             sd_loss, sd_token_mask, zero_advantage_skip_is_exact)
from rltf.algorithms.refinement import revision_bonus_returns
from rltf.errors import ConfigError, DataError
from rltf.feedback.prompts import FM_TEMPLATE
from rltf.feedback.records import read_annotations
from rltf.rollout import RolloutBatch, SamplingParams, run_episodes
from rltf.trainers.base import Trainer
from rltf.trainers.data import RecordStream
from rltf.trainers.forward import completion_logprobs


class RLTFTrainer(Trainer):
    def make_stream(self, position):
        path = getattr(self.config, "offline_data", None)
        if not path:
            return super().make_stream(position)
        if self.method.terms != ("rl", "fm"):
            raise ConfigError(f"offline_data trains the FM term on stored critiques; use rltf-fm, not {self.method.name}")
        records = read_annotations(path)
        usable = [r for r in records if r["critique"].strip()]
        if not usable:
            raise DataError(f"{path}: no record has a critique to learn")
        return RecordStream(usable, self.config.seed, position)

    @property
    def offline(self) -> bool:
        return isinstance(self.stream, RecordStream)

    @property
    def uses_sd(self) -> bool:
        return self.method.uses("sd")

    @property
    def uses_fm(self) -> bool:
        return self.method.uses("fm")

    def train_step(self) -> dict[str, float]:
        c = self.config
        t_start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        metrics: dict[str, float] = {}
        generated = 0
        for micro in range(c.gradient_accumulation_steps):
            problems = self.stream.take(c.prompts_per_step)
            seed = c.seed * 1_000_003 + (self.step + 1) * 101 + micro
            t0 = time.perf_counter()
            batch, rollout_metrics, n_episodes = self.make_batch(problems, seed)
            generated += int(rollout_metrics.get("tokens/generated", 0))
            t1 = time.perf_counter()
            losses = self._accumulate(batch, n_episodes, 1.0 / c.gradient_accumulation_steps)
            t2 = time.perf_counter()
            for k, v in {**rollout_metrics, **losses, "time/rollout": t1 - t0, "time/backward": t2 - t1}.items():
                metrics[k] = metrics.get(k, 0.0) + v / c.gradient_accumulation_steps
        t3 = time.perf_counter()
        norm = self._apply_gradients()
        self.scheduler.step()
        metrics.update({"grad_norm": norm, "time/optimizer": time.perf_counter() - t3})
        return self._finish_step(metrics, t_start, generated)

    def lambda_sd(self) -> float:
        c = self.config
        if c.sd_ramp_steps:
            return c.lambda_sd * min(1.0, self.step / c.sd_ramp_steps)
        return c.lambda_sd

    def make_batch(self, problems, seed):
        """Roll out this process's share of the step's ``problems`` (whole groups); the metrics and
        the number of episodes returned are those of the whole step, over every process."""
        c = self.config
        if self.offline:
            return self._offline_batch(problems)
        N = c.group_size
        failed_before = self.feedback.stats.failed
        lo, problems, episodes, gen_time = self.roll_out(problems, seed, N, self.method.turns,
                                                         stop_when_correct=not getattr(c, "revise_correct", False),
                                                         revision=c.revision_prompt)
        G = len(problems)
        r0 = torch.tensor([e.turns[0].reward for e in episodes]).view(G, N)
        reached = torch.tensor([len(e.turns) > 1 for e in episodes]).view(G, N)
        r1 = torch.tensor([e.turns[1].reward if len(e.turns) > 1 else 0.0 for e in episodes]).view(G, N)
        if self.method.turns == 1:
            a0 = group_centered_advantages(r0, std_normalize=c.std_normalize)
            a1 = torch.zeros_like(r0)
        else:
            g0, g1 = self.returns(r0, r1, reached)
            a0 = group_centered_advantages(g0, std_normalize=c.std_normalize)
            a1 = group_centered_advantages(g1, reached, std_normalize=c.std_normalize)
        a_sd = sd_advantages(r0, r1, reached, c.sd_baseline) if self.uses_sd else None
        rows = _Rows()
        fm_fallbacks = 0
        for k, e in enumerate(episodes):
            g, i = divmod(k, N)
            first = e.turns[0]
            rows.add("rl", first.prompt_ids, first.token_ids, 0, lo + g, float(a0[g, i]), first.logprobs)
            if len(e.turns) > 1:
                second = e.turns[1]
                rows.add("rl", second.prompt_ids, second.token_ids, 1, lo + g, float(a1[g, i]), second.logprobs)
                if a_sd is not None:  # the revision as a target of the single-turn prompt
                    rows.add("sd", first.prompt_ids, second.token_ids, 1, lo + g, float(a_sd[g, i]), second.logprobs)
            if self.uses_fm and e.critiques:
                if e.critiques[0].fallback and not c.fm_train_on_fallback:
                    fm_fallbacks += 1  # a judge failure's stand-in text is not the judge's critique: no target
                else:
                    prompt, target = self._fm_target(problems[g], first.text, e.critiques[0].text)
                    rows.add("fm", prompt, target, 0, lo + g, 1.0, None)
        batch = rows.batch(self.tokenizer.pad_token_id)
        # the step's metrics from every process's episodes, in the order one process would hold them
        outcomes = self.dist.gather([(e.turns[0].reward, e.turns[0].correct, len(e.turns) > 1,
                                      e.turns[1].reward if len(e.turns) > 1 else None,
                                      e.turns[1].correct if len(e.turns) > 1 else None,
                                      sum(len(t.token_ids) for t in e.turns)) for e in episodes])
        counts = self.dist.sum_dict({"failed": float(self.feedback.stats.failed - failed_before),
                                     "fm_fallbacks": float(fm_fallbacks)})
        n = len(outcomes)
        revised = [o for o in outcomes if o[2]]
        metrics = {
            "reward/turn0": torch.tensor([o[0] for o in outcomes]).mean().item(),
            "accuracy/turn0": sum(o[1] for o in outcomes) / n,
            "episodes/reached_turn1": torch.tensor([o[2] for o in outcomes]).float().mean().item(),
            "tokens/generated": float(sum(o[5] for o in outcomes)),
            "time/generate": gen_time, "critique/failed": counts["failed"],
        }
        if revised:
            metrics["reward/turn1"] = torch.tensor([o[3] for o in revised]).mean().item()
            metrics["accuracy/turn1"] = sum(o[4] for o in revised) / len(revised)
            wrong = [o for o in revised if not o[1]]  # i->c among revised wrong answers, c->i among right ones
            right = [o for o in revised if o[1]]
            if wrong:
                metrics["revision/wrong_to_right"] = sum(o[4] for o in wrong) / len(wrong)
            if right:
                metrics["revision/right_to_wrong"] = sum(not o[4] for o in right) / len(right)
        if self.uses_sd:
            metrics["sd/lambda"] = self.lambda_sd()
        if self.uses_fm:
            metrics["fm/fallback_critiques"] = counts["fm_fallbacks"]
        return self.drop_zero_advantage(batch), metrics, n

    def roll_out(self, problems, seed: int, n_samples: int, rounds: int, **options):
        """This process's share of the step's ``problems`` (whole groups), ``n_samples`` episodes each
        of up to ``rounds`` answers, sampled at the config's temperature on the gathered weights ->
        (index of its first problem in the step, its problems, the episodes, generation seconds).
        ``options`` go to :func:`run_episodes` (e.g. ``select``, ``revision``)."""
        c = self.config
        lo, hi = self.dist.shard_bounds(len(problems), "prompts per step (prompts_per_step)")
        params = SamplingParams(max_new_tokens=c.max_new_tokens or self.task.max_new_tokens,
                                temperature=c.temperature, top_p=c.top_p)
        self.model.eval()
        t0 = time.perf_counter()
        with self.full_weights():
            episodes = run_episodes(self.task, problems[lo:hi], self.rollout_backend(), self.feedback, params,
                                    n_samples=n_samples, rounds=rounds, seed=seed, first_key=lo * n_samples,
                                    **options)
        return lo, problems[lo:hi], episodes, time.perf_counter() - t0

    def returns(self, r0: torch.Tensor, r1: torch.Tensor, reached: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-turn returns (G0, G1) [G, N]: G0 = r0 + gamma r1, G1 = r1 (METHODS §1); with SCoRe's
        ``revision_bonus`` alpha G1 = r1 + alpha (r1 - r0); in SCoRe's Stage I (the first
        ``score_stage1_steps`` steps) G0 = 0."""
        c = self.config
        g0, g1 = multiturn_returns(r0, r1, reached, c.gamma)
        if c.revision_bonus:
            _, g1 = revision_bonus_returns(r0, r1, reached, c.revision_bonus)
        if self.step < c.score_stage1_steps:
            g0 = torch.zeros_like(g0)
        return g0, g1

    def kl_coefficients(self, batch: RolloutBatch) -> float | torch.Tensor:
        """The KL coefficient of each rl row: kl_coef, plus first_turn_kl on first turns (SCoRe's anchor)."""
        c = self.config
        extra = getattr(c, "first_turn_kl", 0.0)
        if not extra:
            return c.kl_coef
        return c.kl_coef + extra * (batch.turn == 0).float().to(batch.completion_ids.device)

    def zero_advantage_skips(self) -> dict[str, bool]:
        """Per loss term: whether its sequences with advantage exactly 0 may be left out
        (:func:`rltf.algorithms.zero_advantage_skip_is_exact`); rejection-mode SD keeps every sequence."""
        c = self.config
        return {"rl": zero_advantage_skip_is_exact(c.loss_aggregation, float(self.has_kl_term)),
                "sd": self.uses_sd and c.sd_mode != "rejection" and zero_advantage_skip_is_exact(c.loss_aggregation)}

    def drop_zero_advantage(self, batch: RolloutBatch) -> RolloutBatch:
        """Leave out the forward pass of sequences whose advantage is exactly 0, where that is exact
        for their loss term (:meth:`zero_advantage_skips`)."""
        skip = self.zero_advantage_skips()
        nonzero = (batch.advantages != 0).any(dim=1).tolist()
        return batch.select([b for b, kind in enumerate(batch.kind) if nonzero[b] or not skip.get(kind, False)])

    def _offline_batch(self, records: list[dict]):
        """Offline RLTF-FM: the FM term on stored (answer, critique) pairs, e.g. people's; no sampling.
        Each process trains on its share of the step's records."""
        lo, hi = self.dist.shard_bounds(len(records), "records per step (prompts_per_step)")
        rows = _Rows()
        for k, r in enumerate(records[lo:hi]):
            prompt, target = self._fm_target(r["prompt"], r["answer"], r["critique"])
            rows.add("fm", prompt, target, 0, lo + k, 1.0, None)
        metrics = {"offline/records": float(len(records)), "tokens/generated": 0.0}
        return rows.batch(self.tokenizer.pad_token_id), metrics, len(records)

    def _fm_target(self, question, answer: str, critique: str) -> tuple[list[int], list[int]]:
        """(prompt, target) token ids of the FM sequence: f_FM(x0, y0) -> the critique (capped) + EOS.
        ``question``: a Problem of the task, or the question text itself (stored records)."""
        if not isinstance(question, str):
            question = self.task.format_question(question)
        prompt = FM_TEMPLATE.format(question=question, answer=answer.strip())
        prompt_ids = self.backend.chat_prompt_ids([{"role": "user", "content": prompt}])
        target = self.tokenizer(critique.strip(), add_special_tokens=False)["input_ids"][: self.config.critique_max_tokens]
        return prompt_ids, list(target) + [self.tokenizer.eos_token_id]

    def sequence_loss(self, kind, batch):
        c = self.config
        logp = completion_logprobs(self.model, batch, c.bf16_autocast, self.shared_prefix)
        if kind == "rl":
            if self.has_kl_term:
                with torch.no_grad(), self.reference_model() as ref_model:
                    batch.ref_logprobs = completion_logprobs(ref_model, batch, c.bf16_autocast, self.shared_prefix)
            weights, is_stats = self.sampler_correction(logp, batch)
            loss, stats = policy_gradient_loss(logp, batch.advantages, batch.completion_mask,
                                               aggregation=c.loss_aggregation, ref_logp=batch.ref_logprobs,
                                               kl_coef=self.kl_coefficients(batch), is_weights=weights)
            return loss, {**stats, **is_stats}
        if kind == "sd":
            keep, masked = sd_token_mask(logp, batch.completion_mask, c.sd_mask_threshold)
            loss = sd_loss(logp, batch.advantages, keep, c.sd_mode, logp_x1=batch.sampler_logprobs,
                           aggregation=c.loss_aggregation)
            return self.lambda_sd() * loss, {"masked_fraction": float(masked)}
        if kind == "fm":
            return c.lambda_fm * fm_loss(logp, batch.completion_mask, c.loss_aggregation), {}
        raise ValueError(f"{self.method.name} has no {kind!r} loss term")


class _Rows:
    """The rows of a step's batch, collected in order, then padded once into a RolloutBatch."""

    def __init__(self):
        self.columns: dict[str, list] = {k: [] for k in ("kind", "prompt", "completion", "turn", "group", "adv", "logp",
                                                         "context")}

    def add(self, kind: str, prompt: list[int], completion: list[int], turn: int, group: int, advantage: float,
            sampler_logprobs: list[float] | None, context: list[int] | None = None) -> None:
        """One row; ``context``: a second prompt for the same completion (SDPO's teacher view)."""
        for column, value in zip(self.columns.values(), (kind, prompt, completion, turn, group, advantage,
                                                         sampler_logprobs, context or [])):
            column.append(value)

    def batch(self, pad_id: int) -> RolloutBatch:
        col = self.columns
        return RolloutBatch.from_sequences(col["prompt"], col["completion"], kind=col["kind"], turn=col["turn"],
                                           group=col["group"], pad_id=pad_id, advantages=col["adv"],
                                           sampler_logprobs=col["logp"],
                                           contexts=col["context"] if any(col["context"]) else None)
