"""The method registry: everything rltf knows about a training method, in one object.

A :class:`Method` names its config dataclass, its trainer, how many turns an episode has, the
loss terms it sums, where its reward sits, and the paper to cite on the model card. The CLI
(``rltf train METHOD``), the compare harness and the checkpoints read this registry; nothing
else compares method names as strings. A new method is one :func:`register_method` call (see
docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rltf.errors import ConfigError
from rltf.trainers.config import (CritiqueGRPOConfig, GRPOConfig, MultiTurnGRPOConfig, RewardModelConfig, RLTFFMConfig,
                                  RLTFSDConfig, RLTFSDFMConfig, ScalarPPOConfig, SDPOConfig, SpanPPOConfig)
from rltf.trainers.config_fields import config_from_recipe

RLTF_PAPER = "RL from Text Feedback (RLTF): two-turn episodes with self-distillation (SD) or feedback modelling (FM)."
TEXT2GRAD_PAPER = "Text2Grad: critiques aligned to token spans become per-token rewards for span-level PPO."
PPO_PAPER = "Schulman et al., Proximal Policy Optimization Algorithms, 2017 (scalar-reward baseline)."
SDPO_PAPER = ("Hubotter et al., Reinforcement Learning via Self-Distillation (SDPO), 2026 (arXiv 2601.20802); "
              "TRL's experimental SDPOTrainer.")
CRITIQUE_GRPO_PAPER = ("Zhang et al., Critique-GRPO: Advancing LLM Reasoning with Natural Language and Numerical "
                       "Feedback, 2025 (arXiv 2506.03106).")
SCORE_PAPER = ("Kumar et al., Training Language Models to Self-Correct via Reinforcement Learning (SCoRe), 2024 "
               "(arXiv 2409.12917): revision bonus and first-turn KL anchor.")
GRPO_PAPER = ("Shao et al., DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models "
              "(GRPO), 2024.")


@dataclass(frozen=True)
class Method:
    name: str
    config: type  # the config dataclass: its fields are the YAML keys and CLI flags
    trainer: str  # "module:Class" of the trainer, imported when a run starts
    turns: int  # answers per episode during training (2 = answer, critique, revision)
    terms: tuple[str, ...]  # loss terms summed: rl, sd, fm (RLTF); ppo (Text2Grad); sft (reward model)
    citation: str  # written on the model card of every checkpoint
    reward: str = "sequence"  # where the reward sits: sequence (group advantages), spans or last_token (PPO)
    policy: bool = True  # False for the reward model (trained by SFT, not evaluated as a policy)

    def trainer_class(self) -> type:
        module, _, name = self.trainer.partition(":")
        return getattr(importlib.import_module(module), name)

    def uses(self, term: str) -> bool:
        return term in self.terms


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add a method to the registry (a user's too); its name must be new."""
    if method.name in METHODS:
        raise ConfigError(f"method {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def citation_for(config) -> str:
    """The model card's citation: the method's, and SCoRe's when its options (a revision bonus or a
    first-turn KL anchor) shaped the run."""
    cite = get_method(config.method).citation
    if getattr(config, "revision_bonus", 0) or getattr(config, "first_turn_kl", 0):
        cite += " " + SCORE_PAPER
    return cite


_RLTF = "rltf.trainers.rltf_trainer:RLTFTrainer"
_PPO = "rltf.trainers.ppo_trainer:PPOTrainer"
for _m in (
    Method("grpo", GRPOConfig, _RLTF, 1, ("rl",), GRPO_PAPER),
    Method("multiturn-grpo", MultiTurnGRPOConfig, _RLTF, 2, ("rl",), RLTF_PAPER),
    Method("rltf-sd", RLTFSDConfig, _RLTF, 2, ("rl", "sd"), RLTF_PAPER),
    Method("rltf-fm", RLTFFMConfig, _RLTF, 2, ("rl", "fm"), RLTF_PAPER),
    Method("rltf-sd+fm", RLTFSDFMConfig, _RLTF, 2, ("rl", "sd", "fm"), RLTF_PAPER),
    Method("sdpo", SDPOConfig, "rltf.trainers.sdpo_trainer:SDPOTrainer", 1, ("rl", "sd"), SDPO_PAPER),
    Method("critique-grpo", CritiqueGRPOConfig, "rltf.trainers.critique_grpo_trainer:CritiqueGRPOTrainer", 2,
           ("rl", "refine"), CRITIQUE_GRPO_PAPER),
    Method("span-ppo", SpanPPOConfig, _PPO, 1, ("ppo",), TEXT2GRAD_PAPER, reward="spans"),
    Method("scalar-ppo", ScalarPPOConfig, _PPO, 1, ("ppo",), PPO_PAPER, reward="last_token"),
    Method("reward-model", RewardModelConfig, "rltf.trainers.reward_model_trainer:RewardModelTrainer", 0, ("sft",),
           TEXT2GRAD_PAPER, policy=False),
):
    register_method(_m)


def make_config(method: str, recipe: str | Path | None = None, overrides: dict[str, Any] | None = None):
    """The method's config: defaults < YAML recipe < overrides (CLI flags and --set). Unknown keys and
    out-of-range values are one-line ConfigErrors."""
    return config_from_recipe(get_method(method).config, method, recipe, overrides)
