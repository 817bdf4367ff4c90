"""Trainers: one config dataclass per method; the trainers orchestrate rollout, losses and checkpoints.

Methods live in the registry (:mod:`rltf.trainers.methods`): ``METHODS[name]`` holds a method's
config class, trainer, turns, loss terms and citation.
"""
from rltf.trainers.config import TrainConfig
from rltf.trainers.methods import METHODS, Method, get_method, make_config, register_method


def build_trainer(config, console=print, resume: str | None = None):
    """The trainer of ``config.method``, built from the registry."""
    return get_method(config.method).trainer_class()(config, console=console, resume=resume)


__all__ = ["METHODS", "Method", "TrainConfig", "build_trainer", "get_method", "make_config", "register_method"]
