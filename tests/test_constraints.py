"""The instruction-constraint task: every checker against IFEval's semantics on hand-written answers,
the critic's critique and spans, the smallest repairs, worked solutions, strict and loose metrics."""
import json

import pytest

from rltf.feedback import build_feedback
from rltf.feedback.critics.constraints import MESSAGES
from rltf.tasks import get_task
from rltf.tasks.base import Problem
from rltf.tasks.constraints import (INSTRUCTIONS, ConstraintsTask, count_words, follows, loose_variants,
                                    split_into_sentences)


def check(kind, text, **args):
    return INSTRUCTIONS[kind].check(text, args)


# (kind, args, answers that follow it, answers that do not): IFEval's check_following semantics
CASES = [
    ("punctuation:no_comma", {}, ["No commas here. None at all!"], ["One, two.", "a,b"]),
    ("length_constraints:number_words", {"relation": "less than", "num_words": 5},
     ["one two three four", "don't stop"], ["one two three four five", "it's a b c"]),  # don't = 2 words (\w+)
    ("length_constraints:number_words", {"relation": "at least", "num_words": 3}, ["one two three"], ["one two"]),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     ["Mr. Smith went home. He slept.", "One. Two"], ["One. Two. Three.", "Yes! No? Maybe."]),
    ("length_constraints:number_sentences", {"relation": "at least", "num_sentences": 2}, ["The cat sat. The dog ran."], ["Only one.", "A b. C d."]),  # " b." reads as an initial: one sentence
    ("keywords:existence", {"keywords": ["x"]}, ["x"], [""]),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     ["First part.\n***\nSecond part.", "*** First.\n***\nSecond. ***"], ["Just one.", "A\n***\n***\nB"]),
    ("keywords:existence", {"keywords": ["garden", "river"]},
     ["The GARDEN by the river.", "Gardens and rivers."], ["Only a garden."]),  # re.search: substrings count
    ("keywords:forbidden_words", {"forbidden_words": ["the", "very"]},
     ["A cat sat there.", "Everyone."], ["The cat.", "It was VERY good."]),  # \b: 'there' is not 'the'
    ("keywords:frequency", {"keyword": "sun", "frequency": 2, "relation": "less than"}, ["One sun."],
     ["Sun, sun."]),
    ("keywords:frequency", {"keyword": "sun", "frequency": 2, "relation": "at least"}, ["Sun and sunny."], ["One sun."]),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
     ["A lazy dog."], ["Zoo zebra."]),
    ("change_case:english_lowercase", {}, ["this is all in lower case and in english."],
     ["This has a capital.", "all lower but I am not"]),
    ("change_case:english_capital", {}, ["THIS IS ALL IN CAPITAL LETTERS AND IN ENGLISH."], ["NOT quite ALL."]),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     ["Here it is. Any other questions?", '"Quoted. any other questions?"'], ["Any other questions? Yes."]),
    ("startend:quotation", {}, ['"All of it quoted."', '  "spaces around"  '], ['"Only the start.', 'None.']),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, ["* one\n* two", "Intro:\n- one\n* two"],
     ["* one", "* one\n* two\n* three", "**bold** line\n* one"]),
    ("detectable_format:json_format", {}, ['{"a": 1}', '```json\n{"a": [1, 2]}\n```'], ["{a: 1}", "plain text"]),
    ("detectable_format:title", {}, ["<<My Title>>\nText."], ["No title.", "<<  >> empty"]),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, ["Hi.\nP.S. See you.", "Hi. p.s. bye"],
     ["Hi. PS bye"]),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, ["Hi.\nP.P.S. More."], ["Hi.\nP.S. More."]),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, ["Dear [name] at [address]."],
     ["Dear [name]."]),
]


@pytest.mark.parametrize("kind, args, good, bad", CASES, ids=[f"{c[0]}-{k}" for k, c in enumerate(CASES)])
def test_every_checker_follows_ifeval_semantics(kind, args, good, bad):
    for text in good:
        assert check(kind, text, **args), text
    for text in bad:
        assert not check(kind, text, **args), text


def test_every_instruction_kind_is_covered_and_has_a_critique_message():
    assert {c[0] for c in CASES} == set(INSTRUCTIONS) == set(MESSAGES)


def test_counting_helpers_are_lm_evals():
    assert count_words("It's 5 o'clock, isn't it?") == 8  # \w+ tokens
    assert split_into_sentences("Dr. Who arrived at 3.5 pm. He left! Did he?") == [
        "Dr. Who arrived at 3.5 pm.", "He left!", "Did he?"]


def _problem(*constraints):
    spec = [{"id": k, "args": a} for k, a in constraints]
    return Problem("c/1", "Write a short note.", json.dumps(spec), {"constraints": spec, "topic": "a cat"})


def _critique(problem, answer):
    task = ConstraintsTask()
    return build_feedback("critic").critique(task, problem, answer, task.score(problem, answer))


def test_the_critic_names_each_violation_and_marks_the_offending_text():
    p = _problem(("punctuation:no_comma", {}), ("change_case:english_lowercase", {}),
                 ("keywords:existence", {"keywords": ["garden"]}))
    answer = "flour, water, and yeast make Bread."
    c = _critique(p, answer)
    assert "2 commas (after 'flour' and 'water')" in c.text and "forbids commas" in c.text
    assert "capital letters (in 'Bread')" in c.text and "'garden'" in c.text
    negative = [(s.quote, s.start) for s in c.spans if s.label == "negative"]
    assert negative == [(",", 5), (",", 12), ("Bread", 29)]
    assert all(answer[s.start:s.start + len(s.quote)] == s.quote for s in c.spans)


def test_the_critic_marks_words_past_a_limit_and_what_follows_the_end_phrase():
    p = _problem(("length_constraints:number_words", {"relation": "less than", "num_words": 4}))
    c = _critique(p, "one two three four five six.")
    assert "6 words; it must have fewer than 4" in c.text and "from 'four' on" in c.text
    assert [(s.quote, s.label) for s in c.spans] == [("four five six.", "negative")]
    p = _problem(("startend:end_checker", {"end_phrase": "Any other questions?"}),
                 ("keywords:existence", {"keywords": ["cat"]}))
    c = _critique(p, "My cat. Any other questions? Bye now.")
    assert "words follow it: 'Bye now.'" in c.text
    assert ("Bye now.", "negative") in [(s.quote, s.label) for s in c.spans]
    assert ("cat", "positive") in [(s.quote, s.label) for s in c.spans]  # a required keyword present
    ok = _critique(p, "My cat. Any other questions?")
    assert ok.text == "Your answer follows every instruction."
    assert {s.label for s in ok.spans} == {"positive"}
    # saying nothing is not following "no commas": the critique agrees with the grade
    silent = _problem(("punctuation:no_comma", {}))
    for blank in ("", "  \n"):
        empty = _critique(silent, blank)
        assert not ConstraintsTask().score(silent, blank).correct
        assert empty.text.startswith("Your answer is empty") and empty.spans == []


def test_critic_spans_become_token_rewards_on_the_offending_tokens(tiny):
    from rltf.spans import token_rewards

    _, tok = tiny
    p = _problem(("punctuation:no_comma", {}))
    answer = "red, green and blue"
    c = _critique(p, answer)
    delta, report = token_rewards(answer, c.spans, tok)
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    marked = [tok.decode([i]) for i, d in zip(ids, delta.tolist()) if d < 0]
    assert report.counts["not_found"] == 0 and marked and all("," in t for t in marked)


def test_repairs_are_the_smallest_edits_and_the_critique_never_writes_them():
    task = ConstraintsTask()
    p = _problem(("punctuation:no_comma", {}))
    assert task.revise(p, "Milk, eggs, and bread.") == "Milk eggs and bread."
    p = _problem(("startend:quotation", {}), ("change_case:english_lowercase", {}))
    assert task.revise(p, "Hello there my friend.") == '"hello there my friend."'
    p = _problem(("length_constraints:number_words", {"relation": "less than", "num_words": 4}))
    assert task.revise(p, "one two three four five") == "one two three."
    assert task.revise(p, "") is None
    for problem in task.problems("eval", 40):
        draft = "Dear Tom, I LOST my cat yesterday. Please help. Thanks, Anna"
        revised = task.revise(problem, draft)
        assert revised is None or all(follows(revised, task.constraints(problem)))
        if revised is not None and revised != draft:
            assert revised not in _critique(problem, draft).text


def test_every_problem_has_a_worked_solution_and_prompts_hold_one_to_three_instructions():
    task = get_task("constraints")
    problems = task.problems("train", 300) + task.problems("eval", 100)
    assert {len(task.constraints(p)) for p in problems} == {1, 2, 3}
    for p in problems:
        assert all(follows(task.worked_solution(p), task.constraints(p)))
        assert task.score(p, task.worked_solution(p)).correct
    every = get_task("constraints?kinds=[" + ",".join(INSTRUCTIONS) + "]")
    for p in every.problems("train", 200):
        assert all(follows(every.worked_solution(p), every.constraints(p)))
    one = get_task("constraints1?kinds=punctuation:no_comma")
    assert all(one.constraints(p) == [{"id": "punctuation:no_comma", "args": {}}] for p in one.problems("eval", 5))
    with pytest.raises(Exception, match="unknown instruction kind"):
        get_task("constraints?kinds=no_such_kind")


def test_reward_is_the_share_followed_and_loose_reads_ifevals_variants():
    task = ConstraintsTask()
    p = _problem(("startend:quotation", {}), ("punctuation:no_comma", {}))
    s = task.score(p, 'Sure, here it is:\n"no commas here"')
    assert s.reward == 0.0 and not s.correct  # the first line has a comma and breaks the quotes
    m = task.metrics(p, 'Sure, here it is:\n"no commas here"')
    assert m == {"strict": 0.0, "instruction_strict": 0.0, "instruction_loose": 1.0}  # without the first line
    assert task.score(p, '"no commas here"').correct and task.score(p, '"a, b"').reward == 0.5
    assert task.score(p, "").reward == task.format_penalty
    # saying nothing follows no instruction (IFEval), though "no commas" alone would hold for ""
    silent = _problem(("punctuation:no_comma", {}), ("change_case:english_lowercase", {}))
    for blank in ("", " \n\t"):
        assert follows(blank, task.constraints(silent)) == [False, False]
        assert task.metrics(silent, blank) == {"strict": 0.0, "instruction_strict": 0.0, "instruction_loose": 0.0}
    said = "this is all in lower case, and in english."  # lowercase, with a comma
    assert task.metrics(silent, said) == {"strict": 0.0, "instruction_strict": 0.5, "instruction_loose": 0.5}
    assert loose_variants("a\nb\nc")[:4] == ["a\nb\nc", "b\nc", "a\nb", "b"]
