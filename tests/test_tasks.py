import json

import pytest

from rltf.errors import ConfigError, DataError
from rltf.tasks import get_task, last_boxed, parse_spec
from rltf.tasks.base import split_of


def test_last_boxed_takes_last_and_balances_braces():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("\\boxed{ 42 }.") == "42"


def test_spec_parsing_reads_yaml_scalars():
    assert parse_spec("rg:leg_counting?min_animals=2&flag=true&name=x") == (
        "rg:leg_counting", {"min_animals": 2, "flag": True, "name": "x"})


def test_rewards_follow_methods_values():
    task = get_task("add2")
    p = task.problems("eval", 1, seed=0)[0]
    assert task.score(p, f"so \\boxed{{{p.answer}}}").reward == 1.0
    wrong = task.score(p, f"\\boxed{{{int(p.answer) + 1}}}")
    assert (wrong.reward, wrong.correct, wrong.format_ok) == (0.0, False, True)
    missing = task.score(p, p.answer)
    assert (missing.reward, missing.format_ok) == (-0.1, False)


@pytest.mark.parametrize("spec", ["add2", "knights_knaves", "binary_matrix", "shortest_path", "math"])
def test_train_and_eval_splits_never_share_a_prompt(spec):
    task = get_task(spec)
    n = 40 if task.size() is None else None
    train = {p.question for p in task.problems("train", n, seed=0)}
    evals = {p.question for p in task.problems("eval", 10 if n else None, seed=1)}
    assert train and evals and not train & evals
    assert all(split_of(q, task.eval_fraction) == "eval" for q in evals)


def test_few_shot_examples_precede_question_and_are_not_eval_problems():
    task = get_task("add2")
    p = task.problems("eval", 1, seed=0)[0]
    msgs = task.messages(p)
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert "\\boxed{" in msgs[1]["content"] and p.answer not in msgs[-1]["content"]
    shots = {q for q, _ in task.few_shot_examples()}
    assert all(task.format_question(q) not in shots for q in task.problems("eval", 30, seed=0))


def test_paper_presets_carry_paper_parameters():
    kk = get_task("knights_knaves")
    assert kk.params == {"n_people": 5, "depth_constraint": 3, "width_constraint": 3}
    sp = get_task("shortest_path?min_rows=5")
    assert sp.params["p_blocked"] == 0.4


def test_math_grading_is_symbolic():
    task = get_task("math")
    p = next(q for q in task.problems("all") if q.answer == "\\frac{19}{12}")
    assert task.score(p, "\\boxed{19/12}").correct
    assert task.score(p, "\\boxed{\\frac{38}{24}}").correct
    assert not task.score(p, "\\boxed{1.5}").correct
    assert task.size() >= 50


def test_math_loader_reads_dapo_and_math500_styles(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n"
                 + json.dumps({"prompt": [{"role": "user", "content": "2+2?"}], "reward_model": {"ground_truth": "4"}}) + "\n")
    task = get_task(f"math:{f}")
    assert sorted(p.answer for p in task.problems("all")) == ["2", "4"]


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"problem": "x", "answer": "1"}\n{not json\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        get_task(f"math:{f}")
    g = tmp_path / "missing_field.jsonl"
    g.write_text('{"problem": "x"}\n')
    with pytest.raises(DataError, match=r"missing_field.jsonl:1: missing field 'answer'"):
        get_task(f"math:{g}")


def test_math_loader_reads_a_local_datasets_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"problem": "3+3?", "answer": "6"}]).save_to_disk(str(tmp_path / "ds"))
    task = get_task(f"math:{tmp_path / 'ds'}")
    assert [p.answer for p in task.problems("all")] == ["6"]


def test_unknown_task_and_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("no_such_task")
    with pytest.raises(ConfigError, match="unknown reasoning-gym dataset"):
        get_task("rg:nope")


def test_humaneval_canonical_solutions_pass_and_wrong_ones_report_the_assertion():
    task = get_task("humaneval")
    assert task.size() == 164
    p = task.problems("all", 1, seed=0)[0]
    good = f"```python\n{p.metadata['prompt_code']}{p.answer}```"
    assert task.score(p, good).correct
    entry = p.metadata["entry_point"]
    bad = f"```python\ndef {entry}(*args):\n    return None\n```"
    report = task.test_report(p, bad)
    assert not report.passed and report.error.startswith("AssertionError")
    assert report.failing_text.startswith("assert candidate(")
    assert task.score(p, "no code here").reward == -0.1


def test_code_jsonl_and_slf5k_loaders(tmp_path):
    c = tmp_path / "code.jsonl"
    c.write_text(json.dumps({"prompt": "def inc(x):\n", "tests": "def check(f):\n    assert f(1) == 2\n",
                             "entry_point": "inc"}) + "\n")
    task = get_task(f"code:{c}")
    p = task.problems("all")[0]
    assert task.score(p, "```python\ndef inc(x):\n    return x + 1\n```").correct
    s = tmp_path / "slf.jsonl"
    s.write_text(json.dumps({"post": "My cat ate my homework.", "title": "cat", "subreddit": "pets",
                             "ideal_human_summary": "Cat ate homework."}) + "\n")
    summ = get_task(f"slf5k:{s}")
    q = summ.problems("all")[0]
    assert "My cat ate my homework." in q.question and q.answer == "Cat ate homework."
    with pytest.raises(ConfigError, match="judge"):
        summ.score(q, "A cat story.")


def test_small_procedural_space_ends_instead_of_looping():
    task = get_task("rg:basic_arithmetic?min_terms=2&max_terms=2&min_digits=1&max_digits=1&operators=['+']"
                    "&allow_parentheses=false&allow_negation=false")
    task.max_misses = 2000
    problems = task.problems("eval", 500, seed=0)
    assert 0 < len(problems) < 100  # at most 100 distinct sums of two 1-digit numbers, ~10 % in eval


def test_reasoning_gym_chunks_do_not_repeat_problems():
    import itertools

    task = get_task("addsub2")
    questions = [p.question for p in itertools.islice(task.iter_problems(0), 1500)]
    assert len(set(questions)) > 1300  # 16,200 possible problems: few collisions by chance
