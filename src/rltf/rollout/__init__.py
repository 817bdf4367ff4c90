"""Rollout: multi-turn episodes, the typed batch they become, and held-out evaluation."""
from rltf.models.backend import Generation, GenerationBackend, SamplingParams
from rltf.rollout.batch import KINDS, ModelInputs, RolloutBatch
from rltf.rollout.episode import Episode, Turn, revision_prompt, run_episodes, write_episodes

__all__ = ["Generation", "GenerationBackend", "SamplingParams", "Episode", "Turn", "KINDS", "ModelInputs", "RolloutBatch",
           "run_episodes", "revision_prompt", "write_episodes"]
