"""Evaluation: single-turn accuracy with intervals, K-round feedback inference."""
from rltf.eval.evaluate import evaluate
from rltf.eval.stats import wilson_interval

__all__ = ["evaluate", "wilson_interval"]
