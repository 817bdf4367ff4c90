"""PPO pieces against hand-computed numbers (METHODS §2.4)."""
import math

import pytest
import torch

from rltf.algorithms import (AdaptiveKLController, dense_rewards, full_kl, gae, last_token_rewards, length_weights,
                             policy_gradient_loss, value_loss, whiten)


def close(t, expected):
    torch.testing.assert_close(t, torch.tensor(expected, dtype=t.dtype), atol=1e-6, rtol=1e-6)
    return True


def test_gae_short_sequence_by_hand():
    # One sequence of 3 tokens + 1 pad; gamma 0.9, lambda 0.5.
    r = torch.tensor([[1.0, 0.0, 2.0, 9.0]])
    v = torch.tensor([[0.5, 1.0, 1.5, 7.0]])
    mask = torch.tensor([[True, True, True, False]])
    adv, ret = gae(r, v, mask, gamma=0.9, lam=0.5)
    d2 = 2.0 + 0.9 * 0.0 - 1.5          # 0.5 (no value after the last token)
    d1 = 0.0 + 0.9 * 1.5 - 1.0          # 0.35
    d0 = 1.0 + 0.9 * 1.0 - 0.5          # 1.4
    a2 = d2
    a1 = d1 + 0.9 * 0.5 * a2            # 0.575
    a0 = d0 + 0.9 * 0.5 * a1            # 1.65875
    assert adv.tolist()[0] == pytest.approx([a0, a1, a2, 0.0])
    assert ret.tolist()[0] == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5, 0.0])


def test_gae_gamma1_lambda1_is_reward_to_go_minus_value():
    r = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, 0.0]])
    v = torch.tensor([[0.2, 0.1, 0.3], [0.5, 0.4, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    adv, ret = gae(r, v, mask, gamma=1.0, lam=1.0)
    assert close(adv, [[0.0 - 0.2, 0.0 - 0.1, 1.0 - 0.3], [1.0 - 0.5, 0.0 - 0.4, 0.0]])
    assert close(ret, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def test_whiten_by_hand():
    x = torch.tensor([[1.0, 3.0, 100.0], [5.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = whiten(x, mask)
    mean, std = 3.0, math.sqrt(((1 - 3) ** 2 + 0 + (5 - 3) ** 2) / 3)
    assert close(out, [[(1 - mean) / std, 0.0, 0.0], [(5 - mean) / std, 0.0, 0.0]])
    assert whiten(x, mask, shift_mean=False)[0, 0].item() == pytest.approx((1 - mean) / std + mean, abs=1e-6)


def test_clipped_policy_loss_by_hand():
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5]])).requires_grad_()  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, -1.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, stats = policy_gradient_loss(logp, adv, mask, old_logp=old, clip_eps=0.2, aggregation="token-mean")
    # token 0: min(1.5*1, 1.2*1) = 1.2 (clipped, no gradient); token 1: min(0.5*-1, 0.8*-1) = -0.8 (clipped)
    assert loss.item() == pytest.approx(-(1.2 - 0.8) / 2)
    assert stats["clip_fraction"] == 1.0
    loss.backward()
    assert logp.grad.abs().sum().item() == 0.0  # both clipped: no gradient
    logp2 = torch.log(torch.tensor([[1.1, 0.5]])).requires_grad_()
    loss2, _ = policy_gradient_loss(logp2, torch.tensor([[1.0, 1.0]]), mask, old_logp=old, clip_eps=0.2,
                                    aggregation="token-mean")
    # token 0 unclipped (1.1 A); token 1: ratio 0.5 < 0.8 with A > 0 -> min picks 0.5 (unclipped, has gradient)
    assert loss2.item() == pytest.approx(-(1.1 + 0.5) / 2)
    loss2.backward()
    assert logp2.grad.tolist()[0] == pytest.approx([-1.1 / 2, -0.5 / 2])


def test_clipped_value_loss_by_hand():
    old = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[1.5, 0.9]], requires_grad=True)
    returns = torch.tensor([[2.0, 0.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, stats = value_loss(values, old, returns, mask, clip=0.2)
    # token 0: unclipped (1.5-2)^2 = .25, clipped (1.2-2)^2 = .64 -> .64; token 1: (.9)^2=.81 vs (.9)^2 -> .81
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert stats["value_clip_fraction"] == 0.5
    assert value_loss(values, old, returns, mask, clip=None)[0].item() == pytest.approx(0.5 * (0.25 + 0.81) / 2)


def test_rewards_layout_and_length_weight():
    mask = torch.tensor([[True, True, True], [True, False, False]])
    delta = torch.tensor([[1.0, 0.0, -1.0], [1.0, 5.0, 5.0]])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    r = dense_rewards(delta, mask, kl, beta=0.5)
    assert close(r, [[0.95, -0.1, -1.15], [0.75, 0.0, 0.0]])
    s = last_token_rewards(torch.tensor([2.0, -1.0]), mask)
    assert s.tolist() == [[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0]]
    w = length_weights(60, alpha=1.0, l0=48)
    assert w[0].item() == pytest.approx(1 / (1 + math.exp(-48 - 6)))
    assert w[54].item() == pytest.approx(0.5) and w[59].item() < 0.01


def test_full_kl_matches_definition_and_is_zero_for_equal_logits():
    logits = torch.tensor([[[1.0, 0.0, -1.0]]])
    ref = torch.tensor([[[0.0, 0.0, 0.0]]])
    p = torch.softmax(logits, -1)[0, 0]
    expected = sum(p[i] * (math.log(p[i]) - math.log(1 / 3)) for i in range(3))
    assert full_kl(logits, ref).item() == pytest.approx(float(expected))
    assert full_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-7)


def test_adaptive_kl_controller():
    c = AdaptiveKLController(0.2, target=6.0, horizon=100)
    assert c.update(12.0, 10) == pytest.approx(0.2 * (1 + 0.2 * 10 / 100))  # error clipped to 0.2
    assert AdaptiveKLController(0.2, target=None).update(50.0, 10) == 0.2
