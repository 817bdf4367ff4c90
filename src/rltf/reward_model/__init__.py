"""The generative span-level reward model (METHODS §2.3): reads (prompt, answer), writes a critique
and the good/poor spans as JSON. Train with ``rltf train reward-model``, score with ``rltf eval-rm``,
use as a PPO reward source with ``feedback: reward-model``."""
from rltf.reward_model.data import rm_messages, rm_target
from rltf.reward_model.model import SpanRewardModel

__all__ = ["SpanRewardModel", "rm_messages", "rm_target"]
