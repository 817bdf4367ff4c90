"""A procedural summarisation task whose critic knows the exact faulty spans (a CPU stand-in for SLF5K).

Each problem is a short first-person post: the author's name, age, job and city (the KEY facts),
mixed with distractor sentences about other people and places. The summary must state the four
key facts. Grading reads every fact-like mention in the summary (a known name, city, job, or a
number) and labels it:

- a mention equal to the key fact of its kind is CORRECT (a positive span);
- any other mention is WRONG: a distractor from the post or an invented fact (a negative span).

Metrics: fact precision = correct mentions / all mentions, recall = key facts stated / 4, F1;
the task reward is the F1 and "correct" means F1 = 1 (every key fact, nothing wrong).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Iterator

from rltf.tasks.base import Problem, Score, Task

NAMES = ["Tom", "Anna", "Maria", "David", "Lucy", "James", "Sara", "Ben", "Emma", "Omar", "Nina", "Paul",
         "Chloe", "Ivan", "Grace", "Leo", "Mia", "Sam", "Kate", "Raj"]
CITIES = ["Austin", "Boston", "Denver", "Seattle", "Chicago", "Miami", "Portland", "Dallas", "Atlanta",
          "Phoenix", "Houston", "Detroit"]
JOBS = ["nurse", "teacher", "baker", "pilot", "chef", "plumber", "lawyer", "dentist", "farmer", "painter",
        "cashier", "driver"]
RELATIONS = ["sister", "brother", "cousin", "friend", "neighbour", "roommate"]
KINDS = ("name", "age", "job", "city")
_VOCAB = {"name": NAMES, "city": CITIES, "job": JOBS}
_MENTION = re.compile(r"\b(" + "|".join(NAMES + CITIES + JOBS) + r")s?\b|\b(\d{1,3})\b", re.IGNORECASE)
_KIND_OF = {w.lower(): k for k, words in _VOCAB.items() for w in words}

QUESTION = ("Summarize this post in one sentence, stating the author's name, age, job and city.\n\n"
            "Post: {post}")


@dataclass(frozen=True)
class Mention:
    text: str  # as written in the summary
    kind: str  # name, age, job or city
    value: str  # normalised (lower case; digits for ages)
    start: int
    end: int
    correct: bool
    source: str  # "key", "distractor" (appears in the post) or "invented"


def find_mentions(summary: str, facts: dict[str, str], post: str) -> list[Mention]:
    """Every fact-like mention in ``summary``, labelled against the key ``facts`` of the post."""
    post_lower = post.lower()
    out = []
    for m in _MENTION.finditer(summary):
        if m.group(1):
            word = m.group(1)
            kind, value = _KIND_OF[word.lower()], word.lower()
            start, end = m.start(1), m.end(1)
        else:
            kind, value, start, end = "age", m.group(2), m.start(2), m.end(2)
        correct = value == facts[kind].lower()
        source = "key" if correct else ("distractor" if re.search(rf"\b{re.escape(value)}\b", post_lower) else "invented")
        out.append(Mention(summary[start:end], kind, value, start, end, correct, source))
    return out


def fact_scores(mentions: list[Mention]) -> dict[str, float]:
    stated = {m.kind for m in mentions if m.correct}
    n_correct = sum(m.correct for m in mentions)
    precision = n_correct / len(mentions) if mentions else 0.0
    recall = len(stated) / len(KINDS)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"fact_precision": precision, "fact_recall": recall, "fact_f1": f1}


class FactSummaryTask(Task):
    """``fact_summary``: summarise a generated post; the critic marks wrong and correct facts as spans."""

    name = "fact_summary"
    source = "procedural (rltf)"
    critic = "fact_summary"  # the span critic: wrong facts negative, correct key facts positive
    instruction = ""
    critique_may_state_answer = True  # the facts are in the prompt: naming them gives nothing away
    metric_names = ("fact_precision", "fact_recall", "fact_f1")
    max_new_tokens = 48

    def __init__(self, few_shot: int = 0, distractors: int = 2, **params: Any):
        super().__init__(few_shot=few_shot, distractors=distractors, **params)
        self.distractors = int(distractors)

    def iter_problems(self, seed: int) -> Iterator[Problem]:
        rng = random.Random(seed * 7_919 + 13)
        i = 0
        while True:
            yield self._make(rng, f"{self.name}/s{seed}i{i}")
            i += 1

    def _make(self, rng: random.Random, pid: str) -> Problem:
        name, *others = rng.sample(NAMES, 1 + self.distractors)
        city, *other_cities = rng.sample(CITIES, 1 + self.distractors)
        job, *other_jobs = rng.sample(JOBS, 1 + self.distractors)
        age, *other_ages = rng.sample(range(19, 70), 1 + self.distractors)
        own = [f"I'm {name} and I'm {age}.", f"I work as a {job}.", f"I live in {city}."]
        rng.shuffle(own)
        extra = []
        for k in range(self.distractors):
            rel = rng.choice(RELATIONS)
            extra.append(rng.choice([
                f"My {rel} {others[k]} is a {other_jobs[k]} in {other_cities[k]}.",
                f"My {rel} {others[k]}, who is {other_ages[k]}, just visited {other_cities[k]}.",
                f"Last year {others[k]}, a {other_jobs[k]}, moved to {other_cities[k]}.",
            ]))
        sentences = ["Hi all."] + own[:2] + extra[:1] + own[2:] + extra[1:]
        sentences.append(rng.choice(["Any advice is welcome.", "Thanks for reading.", "What should I do?"]))
        post = " ".join(sentences)
        facts = {"name": name, "age": str(age), "job": job, "city": city}
        answer = f"{name} is a {age}-year-old {job} from {city}."
        return Problem(pid, QUESTION.format(post=post), answer, {"facts": facts, "post": post})

    def worked_solution(self, problem: Problem) -> str:
        return problem.answer

    def revise(self, problem: Problem, draft: str) -> str | None:
        """The draft with each wrong fact replaced by the author's fact of the same kind (the spans
        the critic marks) and a short sentence for each key fact it does not state; None when that
        is not a correct summary."""
        if not draft.strip():
            return None
        facts = problem.metadata["facts"]
        out = draft
        for m in sorted(self.mentions(problem, draft), key=lambda m: -m.start):
            if not m.correct:
                out = out[:m.start] + facts[m.kind] + out[m.end:]
        stated = {m.kind for m in self.mentions(problem, out) if m.correct}
        added = {"name": f"The author is {facts['name']}.", "age": f"{facts['name']} is {facts['age']}.",
                 "job": f"{facts['name']} works as a {facts['job']}.", "city": f"{facts['name']} lives in {facts['city']}."}
        for kind in KINDS:
            if kind not in stated:
                out = out.rstrip() + ("" if out.rstrip().endswith((".", "!", "?")) else ".") + " " + added[kind]
        return out if self.grade(problem, out).correct else None

    def mentions(self, problem: Problem, completion: str) -> list[Mention]:
        return find_mentions(completion, problem.metadata["facts"], problem.metadata["post"])

    def grade(self, problem: Problem, completion: str) -> Score:
        if not completion.strip():
            return Score(self.format_penalty, False, False, "empty summary")
        scores = fact_scores(self.mentions(problem, completion))
        f1 = scores["fact_f1"]
        return Score(f1, f1 >= 1.0, True, f"fact F1 {f1:.2f}", None)

    def metrics(self, problem: Problem, completion: str) -> dict[str, float]:
        """Per-answer task metrics, averaged by the evaluator."""
        return fact_scores(self.mentions(problem, completion))
