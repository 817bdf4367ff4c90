"""RolloutBatch: the one batch type from rollout to loss (layout, slicing, the model's view)."""
import pytest
import torch

from rltf.rollout import RolloutBatch
from rltf.engine.forward import completion_logprobs

PAD = 0


def small(**kw):
    return RolloutBatch.from_sequences([[1, 2, 3, 4], [1, 2, 5]], [[7, 8], [9]], kind=["rl", "sd"], turn=[0, 1],
                                       group=[0, 0], pad_id=PAD, **kw)


def test_from_sequences_pads_and_puts_each_advantage_on_its_tokens():
    b = small(advantages=[0.5, -2.0], sampler_logprobs=[[-0.1, -0.2], None])
    assert b.prompt_ids.tolist() == [[1, 2, 3, 4], [1, 2, 5, PAD]]
    assert b.prompt_mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert b.completion_ids.tolist() == [[7, 8], [9, PAD]]
    assert b.completion_mask.tolist() == [[True, True], [True, False]]
    assert b.advantages.tolist() == [[0.5, 0.5], [-2.0, 0.0]]
    torch.testing.assert_close(b.sampler_logprobs, torch.tensor([[-0.1, -0.2], [0.0, 0.0]]))
    assert b.completion_lengths.tolist() == [2, 1] and len(b) == 2 and b.kind == ("rl", "sd")


def test_select_orders_rows_and_trims_columns_to_the_slice():
    b = small(advantages=[0.5, -2.0])
    one = b.select([1])
    assert one.prompt_ids.tolist() == [[1, 2, 5]] and one.completion_ids.tolist() == [[9]]
    assert one.advantages.tolist() == [[-2.0]] and one.kind == ("sd",) and one.turn.tolist() == [1]
    rev = b.select(torch.tensor([1, 0]))
    assert rev.completion_ids.tolist() == [[9, PAD], [7, 8]] and rev.kind == ("sd", "rl")
    assert b.of_kind("rl").completion_ids.tolist() == [[7, 8]]
    assert [len(p) for p in b.split(1)] == [1, 1]
    assert len(b.of_kind("fm")) == 0


def test_model_inputs_layout_by_hand():
    inputs = small().model_inputs(min_prefix=2)
    assert inputs.prefix_ids.tolist() == [[1, 2]]
    assert inputs.input_ids.tolist() == [[3, 4, 7, 8], [PAD, 5, 9, PAD]]
    assert inputs.attention_mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 0]]
    assert inputs.position_ids.tolist() == [[2, 3, 4, 5], [1, 2, 3, 3]]
    assert inputs.completion_len == 2 and inputs.n_tokens == 8 + 2
    plain = small().model_inputs(min_prefix=3)  # shared part (2 tokens) shorter than min_prefix: no prefix
    assert plain.prefix_ids is None
    assert plain.input_ids.tolist() == [[1, 2, 3, 4, 7, 8], [PAD, 1, 2, 5, 9, PAD]]
    assert plain.position_ids.tolist() == [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 3]]


def test_prefix_leaves_one_token_of_each_prompt_and_needs_two_rows():
    b = RolloutBatch.from_sequences([[1, 2, 3], [1, 2, 3, 4]], [[5], [6]], kind=["rl"] * 2, turn=[0, 0], group=[0, 1],
                                    pad_id=PAD)
    assert b.shared_prefix_len(min_prefix=1) == 2  # not 3: the shorter prompt keeps one token after the prefix
    assert b.select([0]).shared_prefix_len(min_prefix=1) == 0


def test_bad_batches_are_refused():
    with pytest.raises(ValueError, match="unknown sequence kind"):
        RolloutBatch.from_sequences([[1]], [[2]], kind=["dpo"], turn=[0], group=[0], pad_id=PAD)
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        RolloutBatch.from_sequences([[1], [2]], [[2]], kind=["rl"], turn=[0], group=[0], pad_id=PAD)
    with pytest.raises(ValueError, match="advantages has shape"):
        b = small()
        RolloutBatch(b.prompt_ids, b.prompt_mask, b.completion_ids, b.completion_mask, b.kind, b.turn, b.group,
                     advantages=torch.zeros(2, 5))


def test_micro_batches_give_the_rows_of_the_whole_batch(tiny):
    """A slice is padded as if it had been built alone: its log-probs equal the whole batch's rows."""
    model, tok = tiny
    prefix = list(range(5, 45))
    b = RolloutBatch.from_sequences([prefix + [50, 51, 52], prefix + [70], prefix + [90, 91], [3, 4]],
                                    [[60, 61, 62, 63], [80, 81], [92], [93, 94, 95]], kind=["rl"] * 4, turn=[0] * 4,
                                    group=[0, 1, 2, 3], pad_id=tok.pad_token_id)
    with torch.no_grad():
        whole = completion_logprobs(model, b)
        for rows in ([0, 1], [2], [1, 2], [3, 0]):
            part = completion_logprobs(model, b.select(rows))
            for k, r in enumerate(rows):
                n = int(b.completion_lengths[r])
                torch.testing.assert_close(part[k, :n], whole[r, :n], rtol=1e-4, atol=1e-5)
