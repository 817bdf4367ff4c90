"""Evaluation: single-turn accuracy with intervals, K-round feedback inference."""
from rltf.rollout.evaluation import evaluate
from rltf.stats import wilson_interval

__all__ = ["evaluate", "wilson_interval"]
