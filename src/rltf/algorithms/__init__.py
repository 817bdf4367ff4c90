"""Algorithms: pure functions on tensors (advantages, returns, losses), tensor shapes in each docstring."""
from rltf.algorithms.advantages import (group_centered_advantages, masked_group_mean, multiturn_returns,
                                        sd_advantages, sd_token_mask)
from rltf.algorithms.importance import IS_MODES, importance_weights
from rltf.algorithms.losses import (aggregate, fm_loss, gather_logprobs, policy_gradient_loss, sd_loss,
                                    zero_advantage_skip_is_exact)
from rltf.algorithms.ppo import (AdaptiveKLController, dense_rewards, full_kl, gae, last_token_rewards,
                                 length_weights, value_loss, whiten)

__all__ = ["group_centered_advantages", "masked_group_mean", "multiturn_returns", "sd_advantages", "sd_token_mask",
           "aggregate", "fm_loss", "gather_logprobs", "policy_gradient_loss", "sd_loss", "AdaptiveKLController",
           "dense_rewards", "full_kl", "gae", "last_token_rewards", "length_weights", "value_loss", "whiten",
           "zero_advantage_skip_is_exact", "IS_MODES", "importance_weights"]
