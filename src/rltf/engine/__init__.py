"""The engine: trains a policy with any method and knows no method by name (:class:`Engine`), on
the loop every run shares (:class:`~rltf.engine.loop.TrainingRun`: optimizer, schedule, guards,
checkpoints, exact resume, logging). What a method gives it is in :mod:`rltf.engine.parts`.

The names below are imported on first use (:mod:`rltf._lazy`): ``rltf.engine.checkpoint`` and the
other light modules do not import them.
"""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports

_MODULES = {"Engine": "rltf.engine.engine", "Method": "rltf.engine.parts", "LossTerm": "rltf.engine.parts",
            "Collected": "rltf.engine.parts", "Rollout": "rltf.engine.parts", "TrainConfig": "rltf.engine.config",
            "RunConfig": "rltf.engine.config", "TrainingRun": "rltf.engine.loop"}
__all__ = list(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)

if TYPE_CHECKING:
    from rltf.engine.config import RunConfig, TrainConfig
    from rltf.engine.engine import Engine
    from rltf.engine.loop import TrainingRun
    from rltf.engine.parts import Collected, LossTerm, Method, Rollout
