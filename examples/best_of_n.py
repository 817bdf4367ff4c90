"""Rejection-sampling fine-tuning (best-of-N SFT, as in RAFT and ReST) as an rltf method, in one file.

Each step samples N answers per prompt, keeps those whose reward reaches ``min_reward``, and trains
the policy on them by supervised learning (the negative log-likelihood of the kept answers'
tokens). A prompt with no good answer contributes nothing; the loss is divided by the number of
answers sampled, so a step with fewer good answers moves the policy less.
"""
from dataclasses import dataclass

from rltf.algorithms import fm_loss
from rltf.engine import Collected, LossTerm, Method, TrainConfig
from rltf.engine.config_fields import arg
from rltf.methods import register_method
from rltf.rollout import BatchRows


@dataclass
class BestOfNConfig(TrainConfig):
    """Best-of-N SFT: train on the policy's own answers that reached min_reward."""

    method: str = arg("best-of-n", "training method (set by the command)")
    min_reward: float = arg(1.0, "answers with at least this reward are kept as SFT targets", ge=-1e3, le=1e3)


def collect(run, problems, seed):
    """Sample this process's share of the step's prompts; keep the good answers as "sft" rows."""
    c = run.config
    rollout = run.roll_out(problems, seed, c.group_size, rounds=1)
    rows = BatchRows()
    for k, episode in enumerate(rollout.episodes):
        answer = episode.turns[0]
        if answer.reward >= c.min_reward:
            rows.add("sft", answer.prompt_ids, answer.token_ids, turn=0,
                     group=rollout.first + k // c.group_size)
    rewards = run.dist.gather([e.turns[0].reward for e in rollout.episodes])  # every process's answers
    tokens = run.dist.sum(sum(len(e.turns[0].token_ids) for e in rollout.episodes))
    metrics = {"reward/turn0": sum(rewards) / len(rewards), "tokens/generated": float(tokens),
               "sft/kept_fraction": sum(r >= c.min_reward for r in rewards) / len(rewards)}
    return Collected(rows.batch(run.tokenizer.pad_token_id), episodes=len(rewards), metrics=metrics,
                     generated=int(tokens))


def nll(run, batch):
    """The kept answers' negative log-likelihood, summed over tokens (the engine divides by answers)."""
    return fm_loss(run.logprobs(batch), batch.completion_mask, run.config.loss_aggregation), {}


BEST_OF_N = register_method(Method(
    "best-of-n", BestOfNConfig, "Dong et al., RAFT: Reward rAnked FineTuning, 2023 (arXiv 2304.06767).",
    collect, {"sft": LossTerm(nll)}))
