"""Critic for the instruction-constraint task: each broken instruction named with where it is broken
(the commas, the words past the limit, the capitalised words), the offending text as negative
spans, and the text that satisfies an inclusion instruction (a required keyword, the end phrase, the
title, the postscript) as positive spans. It says what is wrong, never the corrected response."""
from __future__ import annotations

from typing import Callable

from rltf.feedback.base import Critique, Span
from rltf.tasks.constraints import INSTRUCTIONS


def _q(text: str) -> str:
    return f"'{text}'"


def _join(items: list[str]) -> str:
    items = list(items)
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _listed(words: list[str], most: int = 3) -> str:
    """Up to ``most`` quoted words, then how many more."""
    shown = [_q(w) for w in words[:most]]
    if len(words) > most:
        return ", ".join(shown) + f" and {len(words) - most} more"
    return _join(shown)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _comma(d: dict, a: dict) -> str:
    where = f" (after {_listed(d['after'])})" if d["after"] else ""
    return f"Your answer uses {_plural(d['count'], 'comma')}{where}; the instruction forbids commas."


def _limit(unit: str) -> Callable[[dict, dict], str]:
    def message(d: dict, a: dict) -> str:
        if d["relation"] == "less than":
            tail = f" Everything from {_q(d['from'])} on is past the limit." if d.get("from") else ""
            return f"Your answer has {_plural(d['count'], unit)}; it must have fewer than {d['limit']}.{tail}"
        return f"Your answer has {_plural(d['count'], unit)}; it needs at least {d['limit']}."
    return message


def _paragraphs(d: dict, a: dict) -> str:
    if d["count"] is None:
        return "Your answer has an empty paragraph between two *** dividers."
    return (f"Your answer has {_plural(d['count'], 'paragraph')}; it must have exactly {d['limit']}, separated "
            "by the divider ***.")


def _existence(d: dict, a: dict) -> str:
    missing = d["missing"]
    return f"Your answer never uses the {'word' if len(missing) == 1 else 'words'} {_listed(missing, 5)}, which the instructions require."


def _forbidden(d: dict, a: dict) -> str:
    return (f"Your answer uses the forbidden {'word' if len(d['words']) == 1 else 'words'} {_listed(d['words'], 5)} "
            f"({_plural(d['count'], 'time')}).")


def _frequency(d: dict, a: dict) -> str:
    need = f"fewer than {d['limit']}" if d["relation"] == "less than" else f"at least {d['limit']}"
    return f"The word {_q(d['keyword'])} appears {_plural(d['count'], 'time')}; it must appear {need} times."


def _letter(d: dict, a: dict) -> str:
    where = f" (in {_listed(d['words'])})" if d["words"] else ""
    need = f"fewer than {d['limit']}" if d["relation"] == "less than" else f"at least {d['limit']}"
    return f"The letter {_q(d['letter'])} appears {_plural(d['count'], 'time')}{where}; it must appear {need} times."


def _lower(d: dict, a: dict) -> str:
    if not d["words"]:
        return "Your answer must be in English and all lowercase; it is not recognised as English."
    return f"Your answer has capital letters (in {_listed(d['words'])}); it must be all lowercase."


def _upper(d: dict, a: dict) -> str:
    if not d["words"]:
        return "Your answer must be in English and all capitals; it is not recognised as English."
    return f"Your answer has lowercase letters (in {_listed(d['words'])}); it must be all capital letters."


def _end(d: dict, a: dict) -> str:
    if d["present"]:
        return f"Your answer must end with the exact phrase {_q(d['phrase'])}, but words follow it: {_q(d['tail'])}"
    return f"Your answer must end with the exact phrase {_q(d['phrase'])}; it ends with {_q(d['tail'])}"


def _quotation(d: dict, a: dict) -> str:
    missing = [w for w, ok in (("start", d["starts"]), ("end", d["ends"])) if not ok]
    return f"Your whole answer must be wrapped in double quotation marks; there is none at the {' or '.join(missing)}."


def _bullets(d: dict, a: dict) -> str:
    return f"Your answer has {_plural(d['count'], 'bullet point')}; it must have exactly {d['limit']}."


def _json(d: dict, a: dict) -> str:
    at = f" (it breaks at {_q(d['at'])})" if d.get("at") else ""
    return f"Your answer is not valid JSON{at}; the entire output must be JSON."


def _placeholders(d: dict, a: dict) -> str:
    return (f"Your answer has {_plural(d['count'], 'placeholder')} in square brackets; it needs at least "
            f"{d['limit']}.")


MESSAGES: dict[str, Callable[[dict, dict], str]] = {
    "punctuation:no_comma": _comma,
    "length_constraints:number_words": _limit("word"),
    "length_constraints:number_sentences": _limit("sentence"),
    "length_constraints:number_paragraphs": _paragraphs,
    "keywords:existence": _existence,
    "keywords:forbidden_words": _forbidden,
    "keywords:frequency": _frequency,
    "keywords:letter_frequency": _letter,
    "change_case:english_lowercase": _lower,
    "change_case:english_capital": _upper,
    "startend:end_checker": _end,
    "startend:quotation": _quotation,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:json_format": _json,
    "detectable_format:title": lambda d, a: "Your answer has no title in double angular brackets, like <<title>>.",
    "detectable_content:postscript": lambda d, a: (f"Your answer has no postscript starting with "
                                                   f"{a['postscript_marker']} at its end."),
    "detectable_content:number_placeholders": _placeholders,
}


EMPTY_ANSWER = "Your answer is empty, so it follows none of the instructions. Write the response they ask for."


def critique_constraints(task, problem, answer: str, score) -> Critique:
    """Every broken instruction, with where; offending text negative, required text present positive.
    An empty or blank answer follows no instruction (as the task grades it), even those that say
    nothing may break, such as "no commas"."""
    if not answer.strip():
        return Critique(EMPTY_ANSWER, [], source="critic")
    parts, spans = [], []
    for c in task.constraints(problem):
        instruction = INSTRUCTIONS[c["id"]]
        if instruction.check(answer, c["args"]):
            spans += [Span(answer[a:b], "positive", a) for a, b in instruction.satisfied(answer, c["args"]) if b > a]
            continue
        found = instruction.violations(answer, c["args"])
        parts.append(MESSAGES[c["id"]](found.detail, c["args"]))
        spans += [Span(answer[a:b], "negative", a) for a, b in found.ranges if b > a and answer[a:b].strip()]
    if not parts:
        return Critique("Your answer follows every instruction.", spans, source="critic")
    return Critique(" ".join(p if p.endswith((".", "'")) else p + "." for p in parts), spans, source="critic")
