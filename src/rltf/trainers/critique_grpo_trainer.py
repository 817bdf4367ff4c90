"""Critique-GRPO (METHODS §3.2): refinements written after a critique join the GRPO group.

One step: n = group_size - k first answers per prompt; the answers ``refine_when`` picks get a
critique and a refinement (the §1 revision prompt); per prompt, k refinements are chosen (correct
ones first, then in sampling order) and trained as answers to the ORIGINAL question. Advantages
are centred on the mean reward of the n answers and the chosen refinements together; first
answers get the on-policy GRPO gradient, refinement tokens the shaping f(p) = p / (p + gamma) of
their current probability. Each prompt's first answers are weighted 1/n and its refinements 1/k
(the paper's J), and the loss is divided by the number of prompts.
"""
from __future__ import annotations

import torch

from rltf.algorithms import zero_advantage_skip_is_exact
from rltf.algorithms.refinement import critique_grpo_loss, mixed_group_advantages
from rltf.errors import ConfigError
from rltf.trainers.forward import completion_logprobs
from rltf.trainers.rltf_trainer import RLTFTrainer, _Rows


def choose_refinements(episodes, k: int) -> list:
    """Up to ``k`` of a prompt's episodes that have a refinement: correct refinements first, then the
    others, each in sampling order (the official code: first correct, else first)."""
    revised = [e for e in episodes if len(e.turns) > 1]
    return ([e for e in revised if e.turns[1].correct] + [e for e in revised if not e.turns[1].correct])[:k]


def revision_selector(rule: str, n: int):
    """``select`` for :func:`run_episodes`: which first answers get a critique (episodes are grouped
    by prompt, n consecutive ones each)."""
    def select(episodes):
        if rule == "always":
            return [True] * len(episodes)
        wrong = [not e.turns[0].correct for e in episodes]
        if rule == "wrong_only":
            return wrong
        return [all(wrong[g * n:(g + 1) * n]) for g in range(len(episodes) // n) for _ in range(n)]
    return select


class CritiqueGRPOTrainer(RLTFTrainer):
    def init_state(self):
        c = self.config
        if c.refinements >= c.group_size:
            raise ConfigError(f"refinements ({c.refinements}) must be smaller than group_size ({c.group_size}): "
                              "the group is n first answers + k refinements")

    @property
    def n_first(self) -> int:
        return self.config.group_size - self.config.refinements

    def make_batch(self, problems, seed):
        c = self.config
        n, k = self.n_first, c.refinements
        failed_before = self.feedback.stats.failed
        lo, problems, episodes, gen_time = self.roll_out(problems, seed, n, 2, select=revision_selector(c.refine_when, n),
                                                         revision=c.revision_prompt)
        groups = [episodes[g * n:(g + 1) * n] for g in range(len(problems))]
        chosen = [choose_refinements(group, k) for group in groups]
        r0 = torch.tensor([[e.turns[0].reward for e in group] for group in groups]).view(len(groups), n)
        r1 = torch.tensor([[e.turns[1].reward for e in ch] + [0.0] * (k - len(ch)) for ch in chosen]).view(-1, k)
        has = torch.tensor([[True] * len(ch) + [False] * (k - len(ch)) for ch in chosen]).view(-1, k)
        a0, a1 = mixed_group_advantages(r0, r1, has, std_normalize=c.std_normalize)
        rows = _Rows()
        for g, group in enumerate(groups):
            for i, e in enumerate(group):  # weight 1/n: the paper's (1/n) sum over first answers
                first = e.turns[0]
                rows.add("rl", first.prompt_ids, first.token_ids, 0, lo + g, float(a0[g, i]), first.logprobs)
            for j, e in enumerate(chosen[g]):  # weight 1/k, trained against the original question
                rows.add("refine", e.turns[0].prompt_ids, e.turns[1].token_ids, 1, lo + g, float(a1[g, j]), None)
        batch = rows.batch(self.tokenizer.pad_token_id)
        outcomes = self.dist.gather([(e.turns[0].reward, e.turns[0].correct, sum(len(t.token_ids) for t in e.turns))
                                     for e in episodes])
        picked = self.dist.gather([(e.turns[1].reward, e.turns[1].correct) for ch in chosen for e in ch])
        revised = self.dist.gather([e.turns[1].correct for e in episodes if len(e.turns) > 1])
        failed = self.dist.sum(float(self.feedback.stats.failed - failed_before))
        n_prompts = len(outcomes) // n
        metrics = {
            "reward/turn0": sum(o[0] for o in outcomes) / len(outcomes),
            "accuracy/turn0": sum(o[1] for o in outcomes) / len(outcomes),
            "tokens/generated": float(sum(o[2] for o in outcomes)), "time/generate": gen_time,
            "critique/failed": failed, "refine/revised": float(len(revised)),
            "refine/prompts_with_refinement": self.dist.sum(float(sum(bool(ch) for ch in chosen))) / n_prompts,
        }
        if revised:
            metrics["accuracy/turn1"] = sum(revised) / len(revised)
        if picked:
            metrics["refine/chosen_correct"] = sum(p[1] for p in picked) / len(picked)
        return self.drop_zero_advantage(batch), metrics, n_prompts

    def zero_advantage_skips(self) -> dict[str, bool]:
        exact = zero_advantage_skip_is_exact(self.config.loss_aggregation, float(self.has_kl_term))
        return {"rl": exact, "refine": exact}

    def sequence_loss(self, kind, batch):
        c = self.config
        if kind != "refine":
            loss, stats = super().sequence_loss(kind, batch)
            return (1.0 / self.n_first) * loss, stats
        logp = completion_logprobs(self.model, batch, c.bf16_autocast, self.shared_prefix)
        loss, stats = critique_grpo_loss(logp, batch.advantages, batch.completion_mask,
                                         torch.ones(len(batch), dtype=torch.bool), gamma=c.shaping_gamma,
                                         clip_eps=c.clip_eps, aggregation=c.loss_aggregation)
        return (1.0 / c.refinements) * loss, stats
