"""Property tests over hundreds of generated puzzles: critics never state the answer, and a
correct answer is never critiqued as wrong."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from rltf.feedback import ProgrammaticCritic, leaks_answer
from rltf.tasks import get_task

SPECS = ["add2", "addsub2", "add1x3", "shortest_path", "binary_matrix", "knights_knaves", "knights_knaves2"]
_TASKS = {}


def task_and_problems(spec):
    if spec not in _TASKS:
        task = get_task(spec)
        _TASKS[spec] = (task, task.problems("train", 60, seed=3))
    return _TASKS[spec]


def corrupt(spec, answer: str, rng: random.Random) -> str:
    """A plausible wrong answer of the same shape."""
    if spec.startswith("add"):
        return str(int(answer) + rng.choice([-11, -10, -1, 1, 9, 10, 100]))
    if spec == "shortest_path":
        moves = answer.split() or ["up"]
        moves[rng.randrange(len(moves))] = rng.choice(["up", "down", "left", "right"])
        return " ".join(moves + ([rng.choice(["up", "left"])] if rng.random() < 0.5 else []))
    if spec == "binary_matrix":
        rows = [r.split() for r in answer.splitlines()]
        r, c = rng.randrange(len(rows)), rng.randrange(len(rows[0]))
        rows[r][c] = str(int(rows[r][c]) + rng.choice([1, 2]))
        return "\n".join(" ".join(r) for r in rows)
    if spec.startswith("knights_knaves"):
        parts = answer.split(", ")
        i = rng.randrange(len(parts))
        for a, b in (("knight", "knave"), ("hero", "villain"), ("pioneer", "laggard"), ("angel", "devil"),
                     ("saint", "sinner"), ("altruist", "egoist"), ("sage", "fool")):
            if a in parts[i]:
                parts[i] = parts[i].replace(a, b)
                break
            if b in parts[i]:
                parts[i] = parts[i].replace(b, a)
                break
        return ", ".join(parts)
    raise AssertionError(spec)


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 59), seed=st.integers(0, 10_000), boxed=st.booleans())
def test_critic_never_leaks_and_spans_quote_the_answer(spec, index, seed, boxed):
    task, problems = task_and_problems(spec)
    problem = problems[index]
    rng = random.Random(seed)
    wrong = corrupt(spec, problem.answer, rng)
    answer = f"Let me think.\n\\boxed{{{wrong}}}" if boxed else f"I think it is {wrong}"
    score = task.score(problem, answer)
    critique = ProgrammaticCritic().critique(task, problem, answer, score)
    if score.correct:  # the corruption happened to give another valid answer
        assert "correct" in critique.text and "incorrect" not in critique.text
        return
    assert not leaks_answer(critique.text, problem.answer), (critique.text, problem.answer)
    assert critique.text and "Error" not in critique.text
    for span in critique.spans:
        assert span.label == "negative"
        assert answer[span.start:span.start + len(span.quote)] == span.quote


@pytest.mark.parametrize("spec", SPECS)
def test_correct_answers_are_graded_correct_and_never_critiqued_as_wrong(spec):
    task, problems = task_and_problems(spec)
    critic = ProgrammaticCritic()
    for problem in problems:
        answer = f"Here is my answer.\n\\boxed{{{problem.answer}}}"
        score = task.score(problem, answer)
        assert score.correct and score.reward == 1.0, (spec, problem.answer)
        assert critic.critique(task, problem, answer, score).text == "Your previous attempt was correct."


def test_leak_detection_is_word_bounded():
    assert leaks_answer("the sum is 71.", "71")
    assert not leaks_answer("move 710 is odd", "71")
    assert leaks_answer("try up up right up instead", "up up right up")
    assert not leaks_answer("the ones digit is wrong", "47")


def test_shortest_path_critic_names_the_first_illegal_move():
    task, problems = task_and_problems("shortest_path")
    problem = next(p for p in problems if p.answer != "infeasible")
    grid = problem.metadata["matrix"]
    r, c = next((i, j) for i, row in enumerate(grid) for j, v in enumerate(row) if v == "*")
    blocked = {"up": (r - 1, c), "down": (r + 1, c), "left": (r, c - 1), "right": (r, c + 1)}
    bad = next((m for m, (i, j) in blocked.items()
                if not (0 <= i < len(grid) and 0 <= j < len(grid[0])) or grid[i][j] == "X"), None)
    if bad is None:
        pytest.skip("start cell has no blocked neighbour in this instance")
    answer = f"\\boxed{{{bad} {bad}}}"
    critique = ProgrammaticCritic().critique(task, problem, answer, task.score(problem, answer))
    assert critique.text.startswith(f"Move 1 ({bad})")
    assert critique.spans[0].start == answer.index(bad)


def test_arithmetic_critic_names_wrong_digits_without_the_value():
    task = get_task("add2")
    problem = next(p for p in task.problems("train", 50) if int(p.answer) < 90)
    wrong = str(int(problem.answer) + 1) if problem.answer[-1] != "9" else str(int(problem.answer) - 1)
    answer = f"\\boxed{{{wrong}}}"
    text = ProgrammaticCritic().critique(task, problem, answer, task.score(problem, answer)).text
    assert text.startswith("The ones digit of your final answer is wrong")
