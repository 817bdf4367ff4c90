"""Training methods, each a value built from parts (:class:`rltf.engine.parts.Method`) in its own file:

- ``rltf.py``: GRPO, multi-turn GRPO, RLTF-SD, RLTF-FM, RLTF-SD+FM (and SCoRe's options);
- ``sdpo.py``: SDPO, self-distillation from a feedback-conditioned self-teacher;
- ``critique_grpo.py``: Critique-GRPO, refinements inside the GRPO group;
- ``ppo.py``: Text2Grad's span-level PPO and the scalar-reward PPO baseline;
- ``revision_sft.py``: the feedback-use warm start, SFT of the revision turn (METHODS §4.1);
- ``reward_model.py``: the span reward model's SFT (its own runner on the shared loop).

Importing this package registers them all in :data:`METHODS`.
"""
# each file registers its methods; this order is the order `rltf train --help` lists them in
from rltf.methods import rltf, sdpo, critique_grpo, ppo, revision_sft, reward_model  # noqa: F401,I001
from rltf.methods.registry import METHODS, build_trainer, citation_for, get_method, make_config, register_method

__all__ = ["METHODS", "build_trainer", "citation_for", "get_method", "make_config", "register_method"]
