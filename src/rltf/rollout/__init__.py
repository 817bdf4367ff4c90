"""Rollout: multi-turn episodes, the typed batch they become, and held-out evaluation.

The names below are imported on first use (:mod:`rltf._lazy`): episodes need no torch, batches do."""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports

_MODULES = {"Generation": "rltf.models.backend", "GenerationBackend": "rltf.models.backend",
            "SamplingParams": "rltf.models.backend", "Episode": "rltf.rollout.episode", "Turn": "rltf.rollout.episode",
            "run_episodes": "rltf.rollout.episode", "revision_prompt": "rltf.rollout.episode",
            "revision_messages": "rltf.rollout.episode", "stored_revision_messages": "rltf.rollout.episode",
            "write_episodes": "rltf.rollout.episode", "KINDS": "rltf.rollout.batch", "ModelInputs": "rltf.rollout.batch",
            "RolloutBatch": "rltf.rollout.batch", "BatchRows": "rltf.rollout.batch"}
__all__ = list(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)

if TYPE_CHECKING:
    from rltf.models.backend import Generation, GenerationBackend, SamplingParams
    from rltf.rollout.batch import KINDS, BatchRows, ModelInputs, RolloutBatch
    from rltf.rollout.episode import (Episode, Turn, revision_messages, revision_prompt, run_episodes,
                                      stored_revision_messages, write_episodes)
