"""Text2Grad data path: the fact-summary task and critic, span alignment, dual-feedback parsing, annotation."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rltf.errors import DataError
from rltf.feedback import ProgrammaticCritic
from rltf.feedback.base import Span
from rltf.feedback.span_parse import FeedbackParseError, format_dual_feedback, parse_dual_feedback, words_to_spans
from rltf.spans import SpanError, locate, token_offsets, token_rewards
from rltf.spans.annotate import AnnotationWriter, annotate, read_annotations
from rltf.tasks import get_task


@pytest.fixture(scope="module")
def smol_tok():
    from rltf.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def tiny_tok():
    from rltf.models import load_tokenizer

    return load_tokenizer("tiny-random")


# -- fact summary task and critic ---------------------------------------------------------------
def test_fact_summary_grading_and_critic_spans():
    task = get_task("fact_summary")
    p = task.problems("eval", 1)[0]
    facts = p.metadata["facts"]
    assert task.grade(p, p.answer).correct and task.grade(p, p.answer).reward == 1.0
    wrong_city = next(c for c in ("Austin", "Boston", "Miami") if c != facts["city"])
    summary = f"{facts['name']} is a {facts['job']} from {wrong_city}."
    m = task.metrics(p, summary)
    assert m["fact_precision"] == pytest.approx(2 / 3) and m["fact_recall"] == pytest.approx(0.5)
    assert m["fact_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    c = ProgrammaticCritic().critique(task, p, summary, task.grade(p, summary))
    labels = {(s.quote, s.label) for s in c.spans}
    assert labels == {(facts["name"], "positive"), (facts["job"], "positive"), (wrong_city, "negative")}
    for s in c.spans:
        assert summary[s.start:s.start + len(s.quote)] == s.quote
    assert "age" in c.text and f'"{wrong_city}"' in c.text
    assert facts["age"] not in c.text  # a missing fact is named by kind, not by value


def test_fact_summary_splits_are_disjoint_and_deterministic():
    task = get_task("fact_summary")
    train = {p.question for p in task.problems("train", 200)}
    ev = [p.question for p in task.problems("eval", 20)]
    assert not train & set(ev)
    assert ev == [p.question for p in get_task("fact_summary").problems("eval", 20)]


# -- alignment ----------------------------------------------------------------------------------
def test_token_rewards_hand_written_example(tiny_tok):
    answer = "Tom is a pilot, not a chef."
    pieces = [answer[a:b] for a, b in token_offsets(answer, tiny_tok)[1]]
    assert pieces == ["T", "o", "m", " is", " a", " ", "p", "i", "l", "o", "t", ",", " ", "n", "o", "t", " a", " c",
                      "he", "f", "."]
    rewards, report = token_rewards(answer, [("Tom", "positive"), ("a chef", "negative"), ("pilot, not", "positive")],
                                    tiny_tok)
    #                        T  o  m  is a  _  p  i  l  o  t  ,  _  n  o  t  a   c   he  f   .
    assert rewards.tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, -1, -1, -1, -1, 0]
    assert report.counts["exact"] == 3 and report.not_found == []


def test_token_rewards_readme_example(smol_tok):
    answer = "Emma is a 27-year-old baker from Denver."
    rewards, report = token_rewards(answer, [("Emma", "positive"), ("27", "positive"), ("baker", "negative"),
                                             ("Denver", "negative")], smol_tok)
    pieces = [answer[a:b] for a, b in token_offsets(answer, smol_tok)[1]]
    assert pieces == ["Em", "ma", " is", " a", " ", "2", "7", "-", "year", "-", "old", " baker", " from", " Denver", "."]
    assert rewards.tolist() == [1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, -1, 0, -1, 0]
    assert report.counts == {"offset": 0, "exact": 4, "normalized": 0, "fuzzy": 0, "not_found": 0}
    assert report.labelled_fraction == pytest.approx(6 / 15)


def test_negative_wins_overlap_and_punctuation_option(smol_tok):
    answer = "The cat sat, then ran."
    r, _ = token_rewards(answer, [("cat sat, then", "positive"), ("sat", "negative")], smol_tok)
    pieces = [answer[a:b] for a, b in token_offsets(answer, smol_tok)[1]]
    got = dict(zip(pieces, r.tolist()))
    assert got[" sat"] == -1 and got[" cat"] == 1 and got[" then"] == 1 and got[","] == 0
    r2, _ = token_rewards(answer, [("cat sat, then", "positive")], smol_tok, zero_punctuation=False)
    assert dict(zip(pieces, r2.tolist()))[","] == 1


def test_repeated_spans_offset_vs_every_occurrence(smol_tok):
    answer = "Tom met Tom."
    every, rep = token_rewards(answer, [("Tom", "negative")], smol_tok)
    assert rep.matches[0].ranges == [(0, 3), (8, 11)] and (every == -1).sum() == 2
    one, rep = token_rewards(answer, [{"quote": "Tom", "label": "negative", "start": 8}], smol_tok)
    assert rep.matches[0].kind == "offset" and one.tolist().index(-1.0) > 0 and (one == -1).sum() == 1


def test_match_kinds_and_not_found_is_reported_not_placed():
    text = "The  summary says \u201cTom\u201d lives in Boston."
    assert locate(text, "the summary").kind == "normalized"  # two spaces and a capital in the text
    assert locate(text, "summary says").kind == "exact"
    m = locate(text, 'says "tom"')
    assert m.kind == "normalized" and text[slice(*m.ranges[0])] == "says \u201cTom\u201d"
    m = locate(text, "lives in Bostn")
    assert m.kind == "fuzzy" and text[slice(*m.ranges[0])].startswith("lives in Bost")
    m = locate(text, "Seattle")
    assert m.kind == "not_found" and m.ranges == []


def test_not_found_span_labels_nothing(smol_tok):
    r, report = token_rewards("Tom is a chef.", [("Seattle", "negative")], smol_tok)
    assert (r == 0).all() and report.not_found == ["Seattle"] and report.labelled_fraction == 0


@pytest.mark.parametrize("bad", [("", "positive"), ("x", "meh"), 42, {"label": "positive"}, ("x", "positive", -1)])
def test_malformed_spans_are_errors(bad, tiny_tok):
    with pytest.raises(SpanError):
        token_rewards("x y z", [bad], tiny_tok)


def test_generated_ids_offsets_handle_split_characters(tiny_tok):
    answer = "café 中文 ok"
    ids = tiny_tok(answer, add_special_tokens=False)["input_ids"] + [tiny_tok.eos_token_id]
    ids_, offsets = token_offsets(answer, tiny_tok, ids)
    assert offsets[-1][0] == offsets[-1][1]  # the end-of-turn token covers nothing
    r, _ = token_rewards(answer, [("中文", "negative")], tiny_tok, token_ids=ids)
    labelled = [i for i, x in enumerate(r.tolist()) if x]
    assert tiny_tok.decode([ids[i] for i in labelled]).strip() == "中文"
    with pytest.raises(SpanError, match="decode"):
        token_offsets("something else", tiny_tok, ids)


_ALPHABET = st.sampled_from(list("abcdeTom ,.!?'\"-\n\t") + ["  ", "é", "中", "文", "ß", "🙂", "27", "the "])


@pytest.mark.parametrize("tok_name", ["smol_tok", "tiny_tok"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_ALPHABET, min_size=2, max_size=30), data=st.data(), use_ids=st.booleans())
def test_property_spans_land_on_covering_tokens(tok_name, request, pieces, data, use_ids):
    tok = request.getfixturevalue(tok_name)
    text = "".join(pieces)
    i = data.draw(st.integers(0, len(text) - 1))
    j = data.draw(st.integers(i + 1, len(text)))
    quote = text[i:j]
    if not quote.strip():
        return
    ids = tok(text, add_special_tokens=False)["input_ids"] if use_ids else None
    if use_ids and tok.decode(ids, skip_special_tokens=True) != text:
        return  # a tokenizer that does not round-trip this text cannot align generated ids to it
    r, report = token_rewards(text, [{"quote": quote, "label": "negative", "start": i}], tok, token_ids=ids,
                              zero_punctuation=False)
    ids_, offsets = token_offsets(text, tok, ids)
    covering = {t for t, (a, b) in enumerate(offsets) if b > a and a < j and i < b}
    assert {t for t, x in enumerate(r.tolist()) if x} == covering
    assert report.matches[0].kind == "offset"
    covered = set()
    for t in covering:
        covered |= set(range(*offsets[t]))
    assert set(range(i, j)) - covered <= {k for k in range(i, j) if text[k].isspace()}


# -- parsing dual feedback ----------------------------------------------------------------------
def test_parse_strict_lenient_code_and_word_lists():
    d = parse_dual_feedback('{"textual_feedback": "Wrong city.", "good_spans": ["Tom"], "poor_spans": ["Boston"]}')
    assert d.critique == "Wrong city." and d.spans == [Span("Tom", "positive"), Span("Boston", "negative")] and not d.lenient
    d = parse_dual_feedback("Sure! Here it is:\n{'textual_feedback': 'ok', 'poor_spans': ['x',],}\nThanks")
    assert d.lenient and d.spans == [Span("x", "negative")]
    d = parse_dual_feedback('```json\n{"feedback": "fails", "wrong_code": ["return a-b"], "improvement_code": ["x=1"]}\n```')
    assert d.spans == [Span("return a-b", "negative")] and d.neutral == ["x=1"]
    d = parse_dual_feedback(json.dumps({"textual_feedback": "f", "word_score_list": [["Tom", 1], ["is", 0], ["from", -1],
                                                                                     ["Boston", -1], [".", 0]]}))
    assert d.spans == [Span("Tom", "positive"), Span("from Boston", "negative")]
    d = parse_dual_feedback('{"textual_feedback": "cut off here", "good_spans": ["Tom"], "poor_spans": ["Bos')
    assert d.critique == "cut off here" and d.spans == [Span("Tom", "positive")]
    text = format_dual_feedback("c", [Span("a", "positive"), Span("b", "negative")])
    assert parse_dual_feedback(text).spans == [Span("a", "positive"), Span("b", "negative")]


@pytest.mark.parametrize("reply,reason", [("", "empty"), ("no json at all", "not_json"),
                                          ('{"good_spans": ["x"]}', "no_feedback"),
                                          ('{"textual_feedback": "f", "good_spans": [1]}', "bad_spans"),
                                          ('{"textual_feedback": "f", "word_score_list": [["a", 5]]}', "bad_spans")])
def test_parse_failures_have_reasons(reply, reason):
    with pytest.raises(FeedbackParseError) as info:
        parse_dual_feedback(reply)
    assert info.value.reason == reason


def test_words_to_spans():
    assert words_to_spans([["a", 1], ["b", 1], ["c", 0], ["d", -1]]) == [Span("a b", "positive"), Span("d", "negative")]


# -- annotation ---------------------------------------------------------------------------------
def test_annotate_offsets_slice_answers_and_resume(tmp_path):
    task = get_task("fact_summary")
    problems = task.problems("train", 4)
    answers = [p.answer for p in problems[:2]] + ["Sam is a chef in Boston, Boston.", ""]
    records, failures = annotate(task, problems, answers, ProgrammaticCritic(), ids=[p.id for p in problems])
    assert failures == {} and len(records) == 4
    for r in records:
        for s in r["spans"]:
            assert r["answer"][s["start"]:s["end"]] == s["quote"]
    out = tmp_path / "a.jsonl"
    w = AnnotationWriter(out)
    w.write(records[:3])
    with out.open("a") as f:
        f.write('{"id": "cut')  # a killed run's last line
    w2 = AnnotationWriter(out)
    assert w2.done == {r["id"] for r in records[:3]}
    assert len(read_annotations(out)) == 3
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n{"id": 2}\n')
    with pytest.raises(DataError):
        AnnotationWriter(tmp_path / "bad.jsonl")


def test_annotate_judge_failures_are_counted_not_written():
    from rltf.feedback.client import ChatClient, JudgeError
    from rltf.feedback.span_judge import SpanJudge

    class Scripted(ChatClient):
        name = "judge:scripted"

        def __init__(self, replies):
            self.replies = replies

        def complete_many(self, conversations):
            return self.replies[:len(conversations)]

    task = get_task("fact_summary")
    problems = task.problems("train", 4)
    answers = [p.answer for p in problems]
    good = json.dumps({"textual_feedback": "Fine.", "good_spans": [problems[0].metadata["facts"]["name"]],
                       "poor_spans": ["not in the answer"]})
    judge = SpanJudge(Scripted([good, JudgeError("timeout"), "garbage", '{"textual_feedback": ""}']))
    records, failures = annotate(task, problems, answers, judge)
    assert len(records) == 1 and failures == {"timeout": 1, "not_json": 1, "no_feedback": 1}
    r = records[0]
    assert r["critique"] == "Fine." and r["unmatched"] == [{"quote": "not in the answer", "label": "negative"}]
    assert r["spans"][0]["match"] == "exact" and r["answer"][r["spans"][0]["start"]:r["spans"][0]["end"]] == r["spans"][0]["quote"]
    assert judge.stats.failed == 3 and "Error" not in json.dumps(records)


def test_rltf_annotate_cli_writes_and_resumes(tmp_path, capsys):
    from rltf.cli import main

    out = tmp_path / "ann.jsonl"
    args = ["annotate", "--task", "fact_summary", "--model", "tiny-random", "--n", "3", "--samples", "2",
            "--max-new-tokens", "8", "--output", str(out)]
    assert main(args) == 0
    assert "wrote 6 records" in capsys.readouterr().out
    args[args.index("--n") + 1] = "4"
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 records" in printed and "6 already there" in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 8 and len({r["id"] for r in records}) == 8
    for r in records:
        for s in r["spans"]:
            assert r["answer"][s["start"]:s["end"]] == s["quote"]
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"id": "u1", "prompt": "Summarise: x", "answer": "y"}) + "\n")
    assert main(["annotate", "--input", str(own), "--feedback", "judge", "--output", str(tmp_path / "o.jsonl")]) == 2


def test_rltf_annotate_with_an_http_judge_counts_failures(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from faulty_server import FaultyServer

    from rltf.cli import main

    own = tmp_path / "own.jsonl"
    own.write_text("".join(json.dumps({"id": f"u{i}", "prompt": "Summarize the post ...", "answer": "Tom is a chef in Boston."})
                           + "\n" for i in range(4)))
    out = tmp_path / "ann.jsonl"
    with FaultyServer(["spans", "500", "garbage", "sleep"], sleep=2.0) as server:
        code = main(["annotate", "--input", str(own), "--feedback", "judge", "--judge-url", server.url,
                     "--judge-model", "m", "--judge-retries", "0", "--judge-timeout", "1", "--judge-concurrency", "1",
                     "--output", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote 1 records" in printed and "3 provider failures" in printed
    (r,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert r["critique"] == "The city is wrong." and r["unmatched"] == [{"quote": "Paris", "label": "negative"}]
    assert {(s["quote"], s["label"]) for s in r["spans"]} == {("Tom", "positive"), ("Boston", "negative")}
    assert r["provenance"]["provider"] == "judge:m"
