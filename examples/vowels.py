"""Count the vowels of a word: a task, its critic and a reward function for rltf, in one file."""
import random
import re

from rltf.feedback import Critique, FeedbackProvider, Span
from rltf.tasks import Problem, Score, Task


class VowelCount(Task):
    """Procedural: a random lower-case word; the answer is its number of vowels, in \\boxed{}."""

    name = "vowels"
    max_new_tokens = 64

    def __init__(self, few_shot: int = 2, min_len: int = 4, max_len: int = 9):
        super().__init__(few_shot=few_shot, min_len=min_len, max_len=max_len)
        self.min_len, self.max_len = min_len, max_len

    def iter_problems(self, seed):
        rng = random.Random(seed)
        while True:
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(self.min_len,
                                                                                                self.max_len)))
            count = sum(c in "aeiou" for c in word)
            yield Problem(word, f"How many vowels (a, e, i, o, u) are in the word '{word}'?", str(count),
                          {"word": word})

    def worked_solution(self, problem):
        vowels = [c for c in problem.metadata["word"] if c in "aeiou"]
        return f"The vowels are {', '.join(vowels) or 'none'}. \\boxed{{{problem.answer}}}"

    def grade(self, problem, completion):
        found = re.findall(r"\\boxed\{\s*(\d+)\s*\}", completion)
        if not found:
            return Score(self.format_penalty, False, False, "no \\boxed{} count")
        correct = found[-1] == problem.answer
        return Score(1.0 if correct else 0.0, correct, True, "", found[-1])


class VowelCritic(FeedbackProvider):
    """Says where to look, marks the wrong count as a negative span, never states the count."""

    name = "vowel-critic"

    def critique(self, task, problem, answer, score):
        self.stats.count(None)
        if score.correct:
            return Critique("Your previous attempt was correct.", [], source=self.name)
        if score.extracted is None:
            return Critique("Finish with the number of vowels in \\boxed{}.", [], source=self.name)
        word = problem.metadata["word"]
        text = (f"Your count is wrong: go through '{word}' one letter at a time and mark every a, e, i, o and u "
                "before you count them.")
        start = answer.rfind(score.extracted)
        return Critique(text, [Span(score.extracted, "negative", start)] if start >= 0 else [], source=self.name)


def brevity(prompt, answer, reference=None, correct=False, **info):
    """A reward function: 1 for a correct count, minus 0.01 per word beyond 30."""
    return (1.0 if correct else 0.0) - 0.01 * max(0, len(answer.split()) - 30)
