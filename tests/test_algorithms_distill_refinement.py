"""The loss functions of METHODS §3 (SDPO, Critique-GRPO, SCoRe) against numbers worked out by hand."""
import math

import pytest
import torch

from rltf.algorithms.distill import divergence, ema_update, sdpo_loss, sdpo_token_losses, topk_log_distributions
from rltf.algorithms.losses import gather_logprobs, policy_gradient_loss
from rltf.algorithms.refinement import (critique_grpo_loss, mixed_group_advantages, refinement_shaping,
                                        revision_bonus_returns)

P, Q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])


def test_divergences_by_hand():
    lp, lq = P.log(), Q.log()
    # KL(p||q) = .5 ln(.5/.9) + .5 ln(.5/.1)
    assert divergence(lp, lq, 1.0).item() == pytest.approx(0.5 * math.log(5 / 9) + 0.5 * math.log(5), abs=1e-6)
    assert divergence(lp, lq, 1.0).item() == pytest.approx(0.510826, abs=1e-6)
    # KL(q||p) = .9 ln 1.8 + .1 ln .2
    assert divergence(lp, lq, 0.0).item() == pytest.approx(0.368064, abs=1e-6)
    # JSD: m = (.7, .3); .5 KL(p||m) + .5 KL(q||m) = .5 (0.087177 + 0.116321)
    assert divergence(lp, lq, 0.5).item() == pytest.approx(0.101749, abs=1e-6)
    assert divergence(lp, lp, 0.3).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="alpha"):
        divergence(lp, lq, 1.5)


def logits_of(probs):
    return torch.tensor(probs).log().view(1, 1, -1)


def test_sampled_token_distillation_value_gradient_and_is_clip():
    student = logits_of([0.5, 0.5]).requires_grad_(True)
    teacher = logits_of([0.9, 0.1])
    tokens = torch.tensor([[0]])
    loss = sdpo_token_losses(student, teacher, tokens, "sampled_token")
    # sg(ln .5 - ln .9) * ln .5
    assert loss.item() == pytest.approx(math.log(5 / 9) * math.log(0.5), abs=1e-6)
    loss.sum().backward()
    # d/dlogit_0 = sg(...) * (1 - p_0) = -0.587787 * 0.5: the teacher likes token 0 more -> push it up
    assert student.grad[0, 0, 0].item() == pytest.approx(math.log(5 / 9) * 0.5, abs=1e-6)
    assert student.grad[0, 0, 0].item() < 0
    # the sampler gave y0 probability .2: ratio .5/.2 = 2.5, truncated at 2
    clipped = sdpo_token_losses(student, teacher, tokens, "sampled_token", old_logp=torch.tensor([[math.log(0.2)]]))
    assert clipped.item() == pytest.approx(2 * math.log(5 / 9) * math.log(0.5), abs=1e-6)
    with pytest.raises(ValueError, match="alpha must be 1"):
        sdpo_token_losses(student, teacher, tokens, "sampled_token", alpha=0.5)


def test_full_logits_and_topk_by_hand():
    s, t = logits_of([0.5, 0.3, 0.2]), logits_of([0.2, 0.2, 0.6])
    tokens = torch.tensor([[0]])
    full = sdpo_token_losses(s, t, tokens, "full_logits", alpha=1.0)
    by_hand = 0.5 * math.log(2.5) + 0.3 * math.log(1.5) + 0.2 * math.log(1 / 3)
    assert full.item() == pytest.approx(by_hand, abs=1e-6)
    # top-2 of the student = ids 0, 1; renormalised: (.625, .375) vs (.5, .5)
    top2 = sdpo_token_losses(s, t, tokens, "topk_logits", alpha=1.0, topk=2)
    assert top2.item() == pytest.approx(0.625 * math.log(1.25) + 0.375 * math.log(0.75), abs=1e-6)
    # with the tail bucket the 3-word vocabulary is whole again: equal to the full divergence
    tail = sdpo_token_losses(s, t, tokens, "topk_logits", alpha=1.0, topk=2, add_tail=True)
    assert tail.item() == pytest.approx(by_hand, abs=1e-5)
    sk, tk = topk_log_distributions(s, t, 2, add_tail=True)
    assert sk.exp().sum().item() == pytest.approx(1.0, abs=1e-6) and tk.shape == (1, 1, 3)
    with pytest.raises(ValueError, match="SDPO mode"):
        sdpo_token_losses(s, t, tokens, "bogus")


def test_sdpo_loss_aggregates_per_sequence_and_reaches_the_teacher():
    torch.manual_seed(0)
    student = torch.randn(2, 3, 5, requires_grad=True)
    teacher = torch.randn(2, 3, 5)
    tokens = torch.randint(0, 5, (2, 3))
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, stats = sdpo_loss(student, teacher, tokens, mask, "full_logits", alpha=0.5)
    per = sdpo_token_losses(student, teacher, tokens, "full_logits", alpha=0.5)
    assert loss.item() == pytest.approx(((per[0, 0] + per[0, 1]) / 2 + per[1, 0]).item() / 2, abs=1e-6)
    # gradient descent on the reverse KL moves the student to the teacher
    opt = torch.optim.SGD([student], lr=1.0)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss, _ = sdpo_loss(student, teacher, tokens, mask, "full_logits", alpha=1.0)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


@pytest.mark.parametrize("aggregation", ["sum", "seq-mean-token-mean", "token-mean"])
def test_loss_mix_with_sampled_tokens_is_the_papers_hybrid_advantage(aggregation):
    """(1 - w) L_GRPO(A) + w L_SD(sampled_token) has the gradient of one policy-gradient loss with the
    per-token advantage lam A + (1 - lam) sg(log q_t - log p_t), lam = 1 - w: SDPO's hybrid (paper,
    METHODS §3.1 (b)). So sd_weight 0.1 is the paper's lam 0.9 for small models."""
    torch.manual_seed(1)
    student = torch.randn(3, 4, 6, requires_grad=True)
    teacher = torch.randn(3, 4, 6)
    tokens = torch.randint(0, 6, (3, 4))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    adv = torch.tensor([0.7, -1.2, 0.5])
    w = 0.1
    logp = gather_logprobs(student, tokens)
    grpo, _ = policy_gradient_loss(logp, adv * (1 - w), mask, aggregation=aggregation)
    sd, _ = sdpo_loss(student, teacher, tokens, mask, "sampled_token", is_clip=None, aggregation=aggregation)
    (mixed_grad,) = torch.autograd.grad(grpo + w * sd, student)

    t_logp = gather_logprobs(teacher, tokens)
    hybrid_adv = (1 - w) * adv[:, None] + w * (t_logp - logp).detach()
    hybrid, _ = policy_gradient_loss(gather_logprobs(student, tokens), hybrid_adv, mask, aggregation=aggregation)
    (hybrid_grad,) = torch.autograd.grad(hybrid, student)
    assert torch.allclose(mixed_grad, hybrid_grad, atol=1e-6)
    assert mixed_grad.abs().max() > 1e-3  # not vacuous
    # and the SD part really is there: without it the gradients differ
    (grpo_grad,) = torch.autograd.grad(policy_gradient_loss(gather_logprobs(student, tokens), adv * (1 - w), mask,
                                                            aggregation=aggregation)[0], student)
    assert not torch.allclose(grpo_grad, hybrid_grad, atol=1e-4)


def test_ema_teacher_update():
    teacher, student = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(teacher.weight), torch.nn.init.ones_(student.weight)
    ema_update(teacher, student, 0.05)
    assert torch.allclose(teacher.weight, torch.full((1, 2), 0.05))


def test_mixed_group_advantages_by_hand():
    r0, r1 = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[1.0]])
    a0, a1 = mixed_group_advantages(r0, r1, torch.tensor([[True]]))
    assert a0.tolist() == [[0.5, -0.5, -0.5]] and a1.tolist() == [[0.5]]  # mean of 4 = .5
    a0, a1 = mixed_group_advantages(r0, r1, torch.tensor([[False]]))  # no refinement: mean of 3
    assert a0[0].tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3]) and a1.tolist() == [[0.0]]
    a0, a1 = mixed_group_advantages(r0, r1, torch.tensor([[True]]), std_normalize=True)  # std .5
    assert a0[0].tolist() == pytest.approx([1.0, -1.0, -1.0], abs=1e-5) and a1[0, 0].item() == pytest.approx(1.0, abs=1e-5)


def test_refinement_shaping_and_its_gradient_peak():
    logp = torch.tensor([math.log(0.1)], requires_grad=True)
    f = refinement_shaping(logp, gamma=0.1)
    assert f.item() == pytest.approx(0.5)
    f.backward()
    assert logp.grad.item() == pytest.approx(0.1 * 0.1 / 0.2 ** 2)  # gamma p / (p + gamma)^2 = .25
    grads = []
    for p in (0.01, 0.1, 0.9):  # the gradient w.r.t. log p peaks at p = gamma
        x = torch.tensor([math.log(p)], requires_grad=True)
        refinement_shaping(x, 0.1).backward()
        grads.append(x.grad.item())
    assert grads[1] > grads[0] and grads[1] > grads[2]


def test_critique_grpo_loss_by_hand():
    logp = torch.tensor([[math.log(0.5)], [math.log(0.1)]], requires_grad=True)
    adv = torch.tensor([-0.5, 0.5])
    mask = torch.ones(2, 1, dtype=torch.bool)
    loss, stats = critique_grpo_loss(logp, adv, mask, refinement=torch.tensor([False, True]), gamma=0.1)
    # row 0 on-policy: -(1 x -.5) = .5; row 1 refinement: -(f(.1) = .5) x .5 = -.25; sum / 2 rows
    assert loss.item() == pytest.approx((0.5 - 0.25) / 2)
    loss.backward()
    assert logp.grad[0, 0].item() == pytest.approx(0.5 / 2)  # -A / 2
    assert logp.grad[1, 0].item() == pytest.approx(-0.5 * 0.25 / 2)  # -A f'(log p) / 2
    assert stats["refinement_token_fraction"] == 0.5 and stats["refinement_shaping_mean"] == pytest.approx(0.5)
    # clipping with eps .2 leaves w = .5 at A > 0 (min picks the smaller), clips a stale ratio
    old = torch.tensor([[math.log(0.25)], [0.0]])
    clipped, _ = critique_grpo_loss(logp.detach(), adv, mask, torch.tensor([False, True]), old_logp=old,
                                    clip_eps=0.2)
    # row 0: w = 2, A = -.5: min(-1, 1.2 x -.5) = -1 -> 1; row 1: min(.25, .8 x .5) = .25 -> -.25
    assert clipped.item() == pytest.approx((1.0 - 0.25) / 2)


def test_revision_bonus_returns_by_hand():
    r0, r1 = torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    reached = torch.tensor([True, True, True, False])
    g0, g1 = revision_bonus_returns(r0, r1, reached, alpha=10.0)
    # kept right: 1; fixed: 1 + 10; stayed wrong: 0; not reached: 0
    assert g0.tolist() == [1.0, 0.0, 0.0, 1.0] and g1.tolist() == [1.0, 11.0, 0.0, 0.0]
    g0, g1 = revision_bonus_returns(r0, torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.ones(4, dtype=torch.bool), 10.0,
                                    first_turn_return=False)
    assert g0.tolist() == [0.0] * 4 and g1.tolist() == [-10.0, 11.0, 0.0, -10.0]  # broke a right answer: -10
