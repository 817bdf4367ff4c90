"""Trainers: one config dataclass per method; the trainers orchestrate rollout, losses and checkpoints."""
from rltf.trainers.config import METHOD_CONFIGS, TrainConfig, make_config


def build_trainer(config: TrainConfig, console=print, resume: str | None = None):
    from rltf.trainers.config import PPO_METHODS

    if config.method in PPO_METHODS:
        from rltf.trainers.ppo_trainer import PPOTrainer

        return PPOTrainer(config, console=console, resume=resume)
    from rltf.trainers.rltf_trainer import RLTFTrainer

    return RLTFTrainer(config, console=console, resume=resume)


__all__ = ["METHOD_CONFIGS", "TrainConfig", "make_config", "build_trainer"]
