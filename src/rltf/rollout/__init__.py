"""Rollout: generation backends and multi-turn episodes."""
from rltf.models.backend import Generation, GenerationBackend, SamplingParams
from rltf.rollout.episode import Episode, Turn, revision_prompt, run_episodes, write_episodes

__all__ = ["Generation", "GenerationBackend", "SamplingParams", "Episode", "Turn", "run_episodes",
           "revision_prompt", "write_episodes"]
