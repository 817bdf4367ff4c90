"""Trainers: one config dataclass per method; the trainers orchestrate rollout, losses and checkpoints.

Methods live in the registry (:mod:`rltf.trainers.methods`): ``METHODS[name]`` holds a method's
config class, trainer, turns, loss terms and citation. The names below are imported on first use
(:mod:`rltf._lazy`): ``rltf.trainers.checkpoint`` and the other light modules do not import them.
"""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports

__all__ = ["METHODS", "Method", "TrainConfig", "build_trainer", "get_method", "make_config", "register_method"]
__getattr__, __dir__ = lazy_exports(__name__, {"TrainConfig": "rltf.trainers.config",
                                                **{n: "rltf.trainers.methods" for n in __all__ if n not in
                                                   ("TrainConfig", "build_trainer")}})

if TYPE_CHECKING:
    from rltf.trainers.config import TrainConfig
    from rltf.trainers.methods import METHODS, Method, get_method, make_config, register_method


def build_trainer(config, console=print, resume: str | None = None):
    """The trainer of ``config.method``, built from the registry."""
    from rltf.trainers.methods import get_method

    return get_method(config.method).trainer_class()(config, console=console, resume=resume)
