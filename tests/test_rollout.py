import torch

from rltf.feedback import ProgrammaticCritic
from rltf.rollout import SamplingParams, run_episodes
from rltf.tasks import get_task


def test_generation_is_reproducible_under_a_seed(tiny_backend):
    convs = [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(6)]
    params = SamplingParams(max_new_tokens=12, temperature=1.0)
    a = tiny_backend.generate(convs, params, seed=5)
    b = tiny_backend.generate(convs, params, seed=5)
    c = tiny_backend.generate(convs, params, seed=6)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


def test_logprobs_match_a_forward_pass_of_prompt_and_answer(tiny, tiny_backend):
    model, tok = tiny
    convs = [[{"role": "user", "content": "Hello there"}], [{"role": "user", "content": "A much longer prompt here, ok?"}]]
    gens = tiny_backend.generate(convs, SamplingParams(max_new_tokens=10, temperature=1.0), seed=0)
    for g in gens:
        ids = torch.tensor([g.prompt_ids + g.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(g.prompt_ids) - 1:-1]
        ref = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(g.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(ref, torch.tensor(g.logprobs), atol=1e-4)
        assert len(g.logprobs) == len(g.token_ids) >= 1


def test_greedy_batched_equals_one_at_a_time(tiny_backend):
    convs = [[{"role": "user", "content": "short"}], [{"role": "user", "content": "a longer prompt " * 5}]]
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    batched = tiny_backend.generate(convs, params)
    single = [tiny_backend.generate([c], params)[0] for c in convs]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]


def test_two_turn_episode_structure(tiny_backend):
    task = get_task("add2")
    problems = task.problems("eval", 3, seed=0)
    eps = run_episodes(task, problems, tiny_backend, ProgrammaticCritic(), SamplingParams(max_new_tokens=6),
                       n_samples=2, rounds=2)
    assert len(eps) == 6 and [e.sample for e in eps[:2]] == [0, 1]
    for e in eps:
        if e.turns[0].correct:
            assert len(e.turns) == 1 and not e.critiques
            continue
        assert len(e.turns) == 2 and len(e.critiques) == 1
        revision = e.turns[1].messages[-1]["content"]
        assert e.critiques[0].text in revision and "Your previous solution" in revision
        assert e.turns[1].messages[:-1] == e.turns[0].messages[:-1]  # a new user message, same few-shot context
        assert e.to_dict()["rewards"] == [t.reward for t in e.turns]


def test_self_critique_rounds_revise_every_answer(tiny_backend):
    from rltf.eval import evaluate
    from rltf.feedback import build_feedback

    task = get_task("add2")
    fb = build_feedback("self", backend=tiny_backend)
    result = evaluate(task, tiny_backend, n=3, rounds=3, feedback=fb, params=SamplingParams(max_new_tokens=5))
    assert len(result["per_round_accuracy"]) == 3
    assert all(len(t["answers"]) == 3 and len(t["critiques"]) == 2 for t in result["transcripts"])
    assert fb.stats.requested == 6


def test_episodes_jsonl_records(tiny_backend, tmp_path):
    import json

    from rltf.rollout import write_episodes

    task = get_task("add2")
    eps = run_episodes(task, task.problems("eval", 2), tiny_backend, ProgrammaticCritic(),
                       SamplingParams(max_new_tokens=4), rounds=2)
    write_episodes(eps, tmp_path / "e.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert {"problem_id", "rewards", "turns", "critiques", "timings"} <= set(row)
        assert row["turns"][0]["token_ids"] and "generate_0" in row["timings"]


def test_shared_prefix_cache_gives_the_same_tokens_and_logprobs(tiny):
    from rltf.models.hf_backend import HFBackend

    prefix = [{"role": "user", "content": "Example question " * 12}, {"role": "assistant", "content": "Answer " * 10}]
    convs = [prefix + [{"role": "user", "content": q}] for q in ("What is 1 + 2?", "And 33 + 44, please?", "7+1")]
    params = SamplingParams(max_new_tokens=10, temperature=1.0)
    cached = HFBackend(*tiny, batch_size=8, prefix_cache=True, min_prefix=8)
    plain = HFBackend(*tiny, batch_size=8, prefix_cache=False)
    a, b = cached.generate(convs, params, seed=3), plain.generate(convs, params, seed=3)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for x, y in zip(a, b):
        assert torch.allclose(torch.tensor(x.logprobs), torch.tensor(y.logprobs), atol=1e-4)
        assert x.prompt_ids == y.prompt_ids
