"""Evaluation: single-turn accuracy with intervals, K-round feedback inference (names imported on
first use, :mod:`rltf._lazy`)."""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports

__all__ = ["evaluate", "wilson_interval"]
__getattr__, __dir__ = lazy_exports(__name__, {"evaluate": "rltf.rollout.evaluation", "wilson_interval": "rltf.stats"})

if TYPE_CHECKING:
    from rltf.rollout.evaluation import evaluate
    from rltf.stats import wilson_interval
