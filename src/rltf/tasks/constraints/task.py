"""The ``constraints`` task: procedural writing requests with one to three IFEval instructions."""
from __future__ import annotations

import json
import random
from typing import Any, Iterator

from rltf.tasks.base import Problem, Score, Task
from rltf.tasks.constraints.instructions import (CONFLICTS, DEFAULT_KINDS, INSTRUCTIONS, follows, loose_variants,
                                                 repair_all)
from rltf.tasks.constraints.text import split_into_sentences

TOPICS = ("a lost cat", "a rainy weekend", "a new bakery in town", "learning to ride a bike", "a trip to the sea",
          "a quiet library", "the first day of school", "a broken umbrella", "a neighbourhood garden",
          "a late train", "making soup", "a birthday surprise", "an old photograph", "a morning run",
          "a city park", "a village market", "a snowy evening", "a kind stranger", "a noisy kitchen",
          "an afternoon at the museum", "a school concert", "a power cut", "a picnic by the lake", "a new puppy",
          "moving to a new flat", "a favourite teacher", "a long bus ride", "a summer storm", "planting tomatoes",
          "a football match", "a missed flight", "a family dinner", "a camping trip", "an old bicycle",
          "a rainy walk home", "a visit to the dentist", "a first job", "a lighthouse", "a night sky full of stars",
          "a street musician", "a cooking class", "a lost wallet", "a hike in the hills", "a snow day",
          "a farmers' market", "a new neighbour", "a quiet beach", "a chess game", "a paper boat", "a school trip",
          "a small bookshop", "a hot air balloon", "a stray dog", "fixing a leaking tap", "a winter coat",
          "a music lesson", "a busy train station", "an apple orchard", "a homemade cake", "a volunteer day")
FORMS = ("a short note to a friend about {t}", "a short story about {t}", "a short description of {t}",
         "a few sentences about {t}", "a short message about {t}", "a short diary entry about {t}",
         "a short email to a colleague about {t}", "a short post for a school newsletter about {t}",
         "a short review of {t}", "a short letter to your grandmother about {t}", "a short poem about {t}",
         "a short advertisement about {t}")
BASE_TEXT = ("I want to tell you about {t}. It made me think about small things that matter. "
             "I hope you enjoy reading this as much as I enjoyed writing it.")


def _bodies(topic: str) -> list[str]:
    """Plain texts on ``topic``, from the whole base text down to a few words (shorter ones leave
    room for what other instructions add under a word or sentence limit)."""
    full = BASE_TEXT.format(t=topic)
    sentences = split_into_sentences(full)
    words = sentences[0].rstrip(".").split()
    return [full, " ".join(sentences[:2]), sentences[0]] + [" ".join(words[:k]) + "." for k in (5, 3, 1)]


class ConstraintsTask(Task):
    """``constraints``: a short writing request with 1-3 verifiable instructions (IFEval's types)."""

    name = "constraints"
    source = "procedural (rltf), IFEval instruction semantics"
    critic = "constraints"
    instruction = ""
    critique_may_state_answer = True  # the instructions are in the prompt: naming them gives nothing away
    metric_names = ("strict", "instruction_strict", "instruction_loose")
    max_new_tokens = 96

    def __init__(self, few_shot: int = 0, min_constraints: int = 1, max_constraints: int = 3,
                 kinds: list[str] | str | None = None, **params: Any):
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or DEFAULT_KINDS)
        unknown = [k for k in kinds if k not in INSTRUCTIONS]
        if unknown:
            raise ValueError(f"unknown instruction kind(s) {unknown}; known: {', '.join(INSTRUCTIONS)}")
        if not 1 <= int(min_constraints) <= int(max_constraints) <= 3:
            raise ValueError("need 1 <= min_constraints <= max_constraints <= 3")
        super().__init__(few_shot=few_shot, min_constraints=min_constraints, max_constraints=max_constraints,
                         kinds=kinds, **params)
        self.kinds, self.lo, self.hi = kinds, int(min_constraints), int(max_constraints)

    def iter_problems(self, seed: int) -> Iterator[Problem]:
        rng = random.Random(seed * 104_729 + 7)
        i = 0
        while True:
            topic = rng.choice(TOPICS)
            request = "Write " + rng.choice(FORMS).format(t=topic) + "."
            target, chosen = rng.randint(self.lo, self.hi), []
            for kind in rng.sample(self.kinds, len(self.kinds)):
                if len(chosen) >= target:
                    break
                if all(frozenset({kind, c}) not in CONFLICTS for c in chosen):
                    chosen.append(kind)
            constraints = [{"id": k, "args": INSTRUCTIONS[k].sample(rng)} for k in chosen]
            text = request + " " + " ".join(INSTRUCTIONS[c["id"]].describe(c["args"]) for c in constraints)
            problem = Problem(f"{self.name}/s{seed}i{i}", text, json.dumps(constraints),
                              {"constraints": constraints, "topic": topic})
            i += 1
            try:  # every problem has a worked solution (the warm start's fallback target): ~1.5 % of
                self.worked_solution(problem)  # draws over all kinds have none (e.g. a letter limit and a
            except ValueError:  # sentence count with JSON) and are drawn again
                continue
            yield problem

    @staticmethod
    def constraints(problem: Problem) -> list[dict]:
        return problem.metadata.get("constraints") or json.loads(problem.answer)

    def worked_solution(self, problem: Problem) -> str:
        """A response that follows every instruction: a plain text on the topic (shortened until
        there is room for what the instructions add), then each instruction's repair."""
        constraints = self.constraints(problem)
        for body in _bodies(problem.metadata.get("topic", "this")):
            text = repair_all(body, constraints)
            if all(follows(text, constraints)):
                return text
        raise ValueError(f"{problem.id}: no composed response follows {[c['id'] for c in constraints]}")

    def revise(self, problem: Problem, draft: str) -> str | None:
        """The draft with the smallest edits that make it follow every instruction (each broken
        instruction's repair); None when the draft is empty or the edits do not reach it."""
        if not draft.strip():
            return None
        revised = repair_all(draft, self.constraints(problem))
        return revised if all(follows(revised, self.constraints(problem))) else None

    def grade(self, problem: Problem, completion: str) -> Score:
        if not completion.strip():
            return Score(self.format_penalty, False, False, "empty response")
        ok = follows(completion, self.constraints(problem))
        broken = [c["id"] for c, good in zip(self.constraints(problem), ok) if not good]
        return Score(sum(ok) / len(ok), not broken, True, "broken: " + ", ".join(broken) if broken else "all followed")

    def metrics(self, problem: Problem, completion: str) -> dict[str, float]:
        constraints = self.constraints(problem)
        strict = follows(completion, constraints)
        variants = loose_variants(completion)
        loose = [any(INSTRUCTIONS[c["id"]].check(v, c["args"]) for v in variants) for c in constraints]
        return {"strict": float(all(strict)), "instruction_strict": sum(strict) / len(strict),
                "instruction_loose": sum(loose) / len(loose)}
