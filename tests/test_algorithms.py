"""Every algorithm function against numbers computed by hand."""
import math

import pytest
import torch

from rltf.algorithms import (aggregate, fm_loss, gather_logprobs, group_centered_advantages, multiturn_returns,
                             policy_gradient_loss, sd_advantages, sd_loss, sd_token_mask)

T = torch.tensor


def test_group_centered_advantages_without_std():
    r = T([[1.0, 0.0, 0.0, -0.1], [1.0, 1.0, 1.0, 1.0]])
    adv = group_centered_advantages(r)
    # group 1 mean = 0.225; group 2 all equal -> 0
    assert torch.allclose(adv, T([[0.775, -0.225, -0.225, -0.325], [0.0, 0.0, 0.0, 0.0]]))


def test_group_centered_advantages_over_masked_episodes_and_empty_group():
    r = T([[1.0, 0.0, 5.0], [3.0, 3.0, 3.0]])
    mask = T([[True, True, False], [False, False, False]])
    adv = group_centered_advantages(r, mask)
    assert torch.equal(adv, T([[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]]))  # no NaN for the empty group


def test_group_centered_advantages_std_normalised():
    r = T([[1.0, 0.0, 0.0, 0.0]])
    adv = group_centered_advantages(r, std_normalize=True, eps=0.0)
    # mean 0.25, population std sqrt(0.1875) = 0.4330127
    assert torch.allclose(adv, T([[0.75, -0.25, -0.25, -0.25]]) / math.sqrt(0.1875))


def test_multiturn_returns():
    r0 = T([0.0, 1.0, -0.1])
    r1 = T([1.0, 7.0, 0.0])
    reached = T([True, False, True])
    g0, g1 = multiturn_returns(r0, r1, reached, gamma=0.1)
    assert torch.allclose(g0, T([0.1, 1.0, -0.1]))  # the early-ended episode keeps G0 = r0
    assert torch.equal(g1, T([1.0, 0.0, 0.0]))


def test_sd_first_turn_baseline_keeps_signal_when_all_revisions_are_correct():
    r0 = T([[0.0, 0.0, 1.0, 0.0]])  # b0 = 0.25
    r1 = T([[1.0, 1.0, 0.0, 1.0]])
    reached = T([[True, True, False, True]])
    first = sd_advantages(r0, r1, reached, baseline="first")
    second = sd_advantages(r0, r1, reached, baseline="second")
    assert torch.allclose(first, T([[0.75, 0.75, 0.0, 0.75]]))
    assert torch.equal(second, T([[0.0, 0.0, 0.0, 0.0]]))  # the collapse the first-turn baseline avoids


def test_sd_token_mask_and_fraction():
    logp = T([[-0.1, -6.0, -5.0], [-7.0, -0.2, 0.0]])
    mask = T([[True, True, True], [True, True, False]])
    keep, frac = sd_token_mask(logp, mask, threshold=-5.0)
    assert torch.equal(keep, T([[True, False, True], [False, True, False]]))
    assert frac.item() == pytest.approx(2 / 5)


def test_gather_logprobs():
    logits = T([[[0.0, math.log(3.0)]]])  # probs 1/4, 3/4
    assert torch.allclose(gather_logprobs(logits, T([[1]])), T([[math.log(0.75)]]))


def test_aggregation_modes():
    x = T([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = T([[True, True, True], [True, False, False]])
    assert aggregate(x, m, "sum").item() == pytest.approx((6 + 4) / 2)
    assert aggregate(x, m, "token-mean").item() == pytest.approx(10 / 4)
    assert aggregate(x, m, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)


def test_on_policy_pg_loss_value_and_gradient():
    logp = T([[-1.0, -2.0], [-0.5, -3.0]], requires_grad=True)
    adv = T([2.0, -1.0])
    mask = T([[True, True], [True, False]])
    loss, _ = policy_gradient_loss(logp, adv, mask, aggregation="sum")
    # ratio = 1: loss = -(2*1 + 2*1 + (-1)*1) / 2 = -1.5
    assert loss.item() == pytest.approx(-1.5)
    loss.backward()
    # d/dlogp = -A * mask / B
    assert torch.allclose(logp.grad, T([[-1.0, -1.0], [0.5, 0.0]]))


def test_ppo_clipping():
    logp = T([[math.log(1.5), math.log(0.5)]], requires_grad=True)
    old = T([[0.0, 0.0]])
    mask = T([[True, True]])
    loss, stats = policy_gradient_loss(logp, T([1.0]), mask, old_logp=old, clip_eps=0.2, aggregation="token-mean")
    # token 1: min(1.5, 1.2) * 1 = 1.2 ; token 2: min(0.5, 0.8) = 0.5 -> loss = -(1.7)/2
    assert loss.item() == pytest.approx(-0.85)
    assert stats["clip_fraction"] == pytest.approx(1.0)
    loss.backward()
    assert logp.grad[0, 0].item() == 0.0  # clipped token carries no gradient
    assert logp.grad[0, 1].item() == pytest.approx(-0.5 * 0.5)  # -ratio*A/2


def test_kl_penalty_k3():
    logp = T([[0.0]])
    ref = T([[math.log(0.5)]])
    loss, stats = policy_gradient_loss(logp, T([0.0]), T([[True]]), ref_logp=ref, kl_coef=2.0)
    k3 = 0.5 - math.log(0.5) - 1  # exp(d) - d - 1 with d = log 0.5
    assert loss.item() == pytest.approx(2.0 * k3) and stats["kl"] == pytest.approx(k3)


def test_sd_loss_modes():
    logp0 = T([[-1.0, -2.0]], requires_grad=True)
    mask = T([[True, True]])
    assert sd_loss(logp0, T([0.5]), mask, "awr").item() == pytest.approx(0.5 * 3.0)
    assert sd_loss(logp0, T([-0.25]), mask, "rejection").item() == 0.0
    logp1 = T([[-1.0 - math.log(2.0), -2.0 + math.log(2.0)]])  # ratios 2 and 0.5 -> clipped 1.2, 0.8
    val = sd_loss(logp0, T([1.0]), mask, "clipped_is", logp_x1=logp1)
    assert val.item() == pytest.approx(1.2 * 1.0 + 0.8 * 2.0)
    with pytest.raises(ValueError):
        sd_loss(logp0, T([1.0]), mask, "clipped_is")


def test_fm_loss_sums_critique_tokens_only():
    logp = T([[-1.0, -2.0, -4.0], [-0.5, -0.5, -9.0]])
    mask = T([[False, True, True], [True, True, False]])  # first token of row 1 is prompt
    assert fm_loss(logp, mask).item() == pytest.approx((6.0 + 1.0) / 2)


# -- importance-sampling correction of a sampler that is not the trained model (vLLM) ---------------
def _is_case():
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    sampler = torch.tensor([[-1.5, -1.0, -9.0]])  # the third token is padding (masked)
    mask = torch.tensor([[True, True, False]])
    return logp, sampler, mask


def test_importance_weights_by_hand():
    from rltf.algorithms import importance_weights

    logp, sampler, mask = _is_case()
    e = math.exp
    w, stats = importance_weights(logp, sampler, mask, "token_truncate", cap=1.5)
    assert torch.allclose(w, torch.tensor([[1.5, e(-1), 0.0]]))
    assert stats["capped_fraction"] == pytest.approx(0.5)
    assert stats["ratio_mean"] == pytest.approx((e(0.5) + e(-1)) / 2)
    assert stats["ratio_max"] == pytest.approx(e(0.5))
    assert stats["mismatch_kl"] == pytest.approx(((e(0.5) - 1 - 0.5) + (e(-1) - 1 + 1)) / 2)
    w, _ = importance_weights(logp, sampler, mask, "token_mask", cap=1.5)
    assert torch.allclose(w, torch.tensor([[0.0, e(-1), 0.0]]))
    w, stats = importance_weights(logp, sampler, mask, "sequence_truncate", cap=1.5)
    assert torch.allclose(w, torch.tensor([[e(-0.5), e(-0.5), 0.0]])) and stats["capped_fraction"] == 0
    w, stats = importance_weights(logp, sampler, mask, "sequence_truncate", cap=0.5)
    assert torch.allclose(w, torch.tensor([[0.5, 0.5, 0.0]])) and stats["capped_fraction"] == 1
    w, _ = importance_weights(logp, sampler, mask, "sequence_mask", cap=0.5)
    assert torch.equal(w, torch.zeros(1, 3))
    w, stats = importance_weights(logp, sampler, mask, "off")
    assert torch.equal(w, mask.float()) and stats["capped_fraction"] == 0
    with pytest.raises(ValueError, match="mode"):
        importance_weights(logp, sampler, mask, "tokens")
    with pytest.raises(ValueError, match="cap"):
        importance_weights(logp, sampler, mask, "token_mask", cap=0)


def test_importance_weights_of_equal_samplers_are_one_and_carry_no_gradient():
    from rltf.algorithms import importance_weights

    logp = torch.randn(3, 5, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.bool)
    w, stats = importance_weights(logp, logp.detach().clone(), mask)
    assert torch.equal(w, torch.ones(3, 5)) and not w.requires_grad
    assert stats["mismatch_kl"] == 0 and stats["ratio_max"] == 1


def test_policy_gradient_is_weighted_per_token():
    """On-policy (rho = 1) the per-token gradient of the summed loss is -w_t * A."""
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    adv = torch.tensor([2.0])
    mask = torch.tensor([[True, True, False]])
    w = torch.tensor([[0.5, 3.0, 7.0]])
    loss, _ = policy_gradient_loss(logp, adv, mask, aggregation="sum", is_weights=w)
    loss.backward()
    assert loss.item() == pytest.approx(-(0.5 * 2 + 3.0 * 2))
    assert torch.allclose(logp.grad, torch.tensor([[-1.0, -6.0, 0.0]]))
