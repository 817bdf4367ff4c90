"""Micro-batch planning: which rows run through the model together (rltf.rollout.micro_batches)."""
import dataclasses
import random

import pytest
import torch

from helpers import parity_grader, trainer
from rltf.rollout import RolloutBatch
from rltf.rollout.micro_batches import OpenMicroBatch, plan_micro_batches

PAD = 0


def two_turn_rows():
    """Four first answers after a 40-token shared prefix + a question, and two revisions whose prompts
    repeat that and add the first answer and a critique (24 more tokens), as a two-turn step collects them."""
    prefix = list(range(100, 140))
    q = {0: [1, 2], 1: [3, 4]}
    prompts, completions, turns, groups = [], [], [], []
    for g, n in ((0, 2), (1, 2)):
        for i in range(n):
            prompts.append(prefix + q[g]); completions.append([7] * (3 + i)); turns.append(0); groups.append(g)
            if i == 0:  # the first answer of each problem is wrong and gets a revision
                prompts.append(prefix + q[g] + list(range(200, 224))); completions.append([8] * 5)
                turns.append(1); groups.append(g)
    return RolloutBatch.from_sequences(prompts, completions, kind=["rl"] * len(prompts), turn=turns, group=groups,
                                       pad_id=PAD)


def test_two_turn_rows_by_hand():
    b = two_turn_rows()  # collection order: t0 g0, t1 g0, t0 g0, t0 g1, t1 g1, t0 g1
    assert b.turn.tolist() == [0, 1, 0, 0, 1, 0]
    # cut in collection order (4 rows): prefix 40 once + 4 rows x (26 prompt rest + 5 completion);
    # then 2 rows of problem 1 sharing 41 tokens (all but the last of the shorter prompt): 41 + 2 x (25 + 5)
    in_order = [p.model_inputs().n_tokens for p in b.split(4)]
    assert in_order == [40 + 4 * (26 + 5), 41 + 2 * (25 + 5)]
    parts = b.micro_batches(4)
    assert [p.turn.tolist() for p in parts] == [[0, 0, 0, 0], [1, 1]]
    # turn 0: 4 rows share the 40-token prefix; rest 2 question tokens; longest answer 4 -> 40 + 4 x 6
    # turn 1: 2 rows share 40 tokens; rest 26; revision 5 -> 40 + 2 x 31
    assert [p.model_inputs().n_tokens for p in parts] == [40 + 4 * 6, 40 + 2 * 31]
    assert sum(p.model_inputs().n_tokens for p in parts) == 166 < sum(in_order) == 265


def test_the_plan_is_a_partition_within_its_limits_and_its_costs_are_the_model_inputs():
    rng = random.Random(0)
    for trial in range(30):
        shared = list(range(100, 100 + rng.choice([0, 10, 40, 60])))
        prompts, completions, turns, groups = [], [], [], []
        for r in range(rng.randint(1, 25)):
            g = rng.randint(0, 3)
            prompts.append(shared + [g + 1] * rng.randint(1, 5) + [rng.randint(2, 90) for _ in range(rng.randint(0, 30))])
            completions.append([5] * rng.randint(1, 12))
            turns.append(rng.randint(0, 1)); groups.append(g)
        b = RolloutBatch.from_sequences(prompts, completions, kind=["rl"] * len(prompts), turn=turns, group=groups,
                                        pad_id=PAD)
        size, cap = rng.randint(1, 8), rng.choice([0, 60, 200])
        lengths = b.prompt_mask.sum(1).tolist()
        plan = plan_micro_batches([p[:n] for p, n in zip(b.prompt_ids.tolist(), lengths)],
                                  b.completion_lengths.tolist(), turns, groups, size, cap, min_prefix=32)
        assert sorted(i for rows in plan for i in rows) == list(range(len(b)))
        for rows in plan:
            part = b.select(rows)
            n = part.model_inputs(min_prefix=32).n_tokens
            assert len(rows) <= size
            assert not cap or n <= cap or len(rows) == 1  # a row longer than the cap runs alone
            assert part.turn.tolist() == sorted(part.turn.tolist())
            open_ = OpenMicroBatch(32)  # the planner's running cost is what the model runs on
            for r in rows:
                prompt = b.prompt_ids[r, :lengths[r]].tolist()
                open_.add(r, prompt, int(b.completion_lengths[r]))
            assert open_.cost() == n


def test_a_row_sharing_nothing_starts_a_new_micro_batch():
    prefix = list(range(100, 140))
    b = RolloutBatch.from_sequences([prefix + [1], prefix + [2], list(range(300, 341))], [[5], [5], [5]],
                                    kind=["fm"] * 3, turn=[0] * 3, group=[0, 0, 1], pad_id=PAD)
    parts = b.micro_batches(16)
    # together: no shared prefix (the third prompt differs from the first token) -> 3 x (41 + 1) = 126;
    # apart: (40 + 2 x 2) + (41 + 1) = 86
    assert [len(p) for p in parts] == [2, 1]
    assert sum(p.model_inputs().n_tokens for p in parts) == 86


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="micro-batch size"):
        plan_micro_batches([[1]], [1], [0], [0], size=0)


@pytest.mark.parametrize("size,cap", [(2, 0), (3, 0), (64, 40)])
def test_the_plan_changes_no_gradient_of_a_two_turn_step(tmp_path, monkeypatch, size, cap):
    """RLTF-FM's rows (first answers, revisions, critique targets) accumulated in one micro-batch and
    as planned: the same gradients; the planned step runs on no more positions than collection order."""
    tr = trainer("rltf-fm", tmp_path, group_size=4, micro_batch_size=64, temperature=1.0, feedback="critic")
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    collected = tr.method.collect(tr, tr.task.problems("train", 2), seed=3)
    batch, n = collected.batch, collected.episodes
    assert {"rl", "fm"} <= set(batch.kind) and 1 in batch.turn.tolist()

    def grads():
        tr.optimizer.zero_grad(set_to_none=True)
        totals = tr.accumulate(batch, n, 1.0)
        return totals, [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in tr.model.parameters()]

    whole_totals, whole = grads()
    tr.config.micro_batch_size, tr.config.micro_batch_tokens = size, cap
    planned_totals, planned = grads()
    assert any(g.abs().sum() > 0 for g in whole)
    for a, b in zip(whole, planned):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for kind in ("rl", "fm"):
        assert planned_totals[f"loss/{kind}"] == pytest.approx(whole_totals[f"loss/{kind}"], rel=1e-4, abs=1e-6)
    tr.config.micro_batch_order = "collected"  # the order before planning: same gradients, more positions
    collected_totals, in_order = grads()
    for a, b in zip(whole, in_order):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    expected = sum(p.model_inputs().n_tokens for kind in ("rl", "fm") for p in batch.of_kind(kind).split(size))
    assert collected_totals["tokens/trained"] == expected >= planned_totals["tokens/trained"]


def test_a_lockstep_process_with_fewer_micro_batches_runs_the_terms_idle_passes(tmp_path, monkeypatch):
    """Under FSDP2/ZeRO every process runs as many passes as the busiest one: the passes this process
    lacks call each term's own idle loss with the run (SDPO's sd term has one), and change no gradient."""
    from rltf.engine.engine import Engine

    tr = trainer("sdpo", tmp_path, group_size=4, micro_batch_size=4, temperature=1.0)
    monkeypatch.setattr(tr.task, "grade", parity_grader)
    collected = tr.method.collect(tr, tr.task.problems("train", 2), seed=3)
    batch, n = collected.batch, collected.episodes
    assert "sd" in batch.kind

    def grads():
        tr.optimizer.zero_grad(set_to_none=True)
        tr.accumulate(batch, n, 1.0)
        return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in tr.model.parameters()]

    monkeypatch.setattr(Engine, "lockstep", property(lambda self: True))
    alone = grads()
    calls = []
    term = tr.method.terms["sd"]
    monkeypatch.setitem(tr.method.terms, "sd", dataclasses.replace(term, idle=lambda run: calls.append(run) or term.idle(run)))
    gather = tr.dist.gather_object

    def busier_peer(obj):  # another process has one more micro-batch of every term
        if isinstance(obj, dict) and obj and all(isinstance(v, int) for v in obj.values()):
            return [obj, {k: v + 1 for k, v in obj.items()}]
        return gather(obj)

    monkeypatch.setattr(tr.dist, "gather_object", busier_peer)
    padded = grads()
    assert calls and all(run is tr for run in calls)
    for a, b in zip(alone, padded):
        torch.testing.assert_close(a, b)
