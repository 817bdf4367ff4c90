"""The IFEval instruction types by id (:data:`INSTRUCTIONS`), the pairs never drawn together, the
kinds drawn by default, and checking or repairing a response against a list of constraints."""
from __future__ import annotations

from rltf.tasks.constraints.base import Instruction
from rltf.tasks.constraints.counts import (ForbiddenWords, KeywordExistence, KeywordFrequency, LetterFrequency,
                                           NumberOfParagraphs, NumberOfSentences, NumberOfWords, Placeholders)
from rltf.tasks.constraints.formats import (BulletList, Capitals, EndPhrase, JsonFormat, Lowercase, NoComma,
                                            Postscript, Quotation, Title)

INSTRUCTIONS: dict[str, Instruction] = {i.id: i for i in (
    NoComma(), NumberOfWords(), NumberOfSentences(), NumberOfParagraphs(), KeywordExistence(), ForbiddenWords(),
    KeywordFrequency(), LetterFrequency(), Lowercase(), Capitals(), EndPhrase(), Quotation(), BulletList(),
    JsonFormat(), Title(), Postscript(), Placeholders())}
# Pairs never drawn together: no response can follow both (or one repair would undo the other).
CONFLICTS = {frozenset(pair) for pair in (
    ("change_case:english_lowercase", "change_case:english_capital"),
    ("detectable_format:json_format", "startend:quotation"), ("detectable_format:json_format", "startend:end_checker"),
    ("detectable_format:json_format", "detectable_format:title"),
    ("detectable_format:json_format", "detectable_content:postscript"),
    ("detectable_format:json_format", "detectable_format:number_bullet_lists"),
    ("detectable_format:json_format", "length_constraints:number_paragraphs"),
    # two length limits can contradict each other (fewer than 15 words in at least 5 sentences)
    ("length_constraints:number_words", "length_constraints:number_sentences"),
    ("length_constraints:number_words", "length_constraints:number_paragraphs"),
    ("length_constraints:number_sentences", "length_constraints:number_paragraphs"))}
# The kinds drawn by default: every one the default model can follow sometimes (docs/TASKS.md).
DEFAULT_KINDS = ("punctuation:no_comma", "length_constraints:number_words", "keywords:existence",
                 "keywords:forbidden_words", "change_case:english_lowercase", "startend:end_checker",
                 "startend:quotation", "detectable_format:title", "detectable_content:postscript",
                 "detectable_format:number_bullet_lists")
# the order in which a composed answer is made to follow its instructions (later edits must not undo earlier ones)
_COMPOSE_ORDER = ("length_constraints:number_sentences", "length_constraints:number_words",
                  "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
                  "punctuation:no_comma", "detectable_content:number_placeholders",
                  "length_constraints:number_paragraphs", "detectable_format:number_bullet_lists",
                  "detectable_format:title", "detectable_content:postscript", "startend:end_checker",
                  "change_case:english_lowercase", "change_case:english_capital", "startend:quotation",
                  "detectable_format:json_format")


def follows(text: str, constraints: list[dict]) -> list[bool]:
    """For each constraint ``{"id", "args"}``: does ``text`` follow it (strict)? An empty or blank
    response follows none, as in IFEval (``response.strip() and check(response)``): otherwise "no
    commas" or "all lowercase" would count as followed by saying nothing."""
    if not text.strip():
        return [False] * len(constraints)
    return [INSTRUCTIONS[c["id"]].check(text, c["args"]) for c in constraints]


def loose_variants(text: str) -> list[str]:
    """IFEval's loose evaluation: the response, without its first line, its last line, or both, each
    also without asterisks."""
    lines = text.split("\n")
    variants = [text, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    variants += [v.replace("*", "") for v in variants]
    return [v for v in variants if v.strip()]


def repair_all(text: str, constraints: list[dict], passes: int = 3) -> str:
    """Apply the repair of every broken constraint, in the composing order; again while one repair
    broke another instruction (at most ``passes`` rounds)."""
    order = sorted(constraints, key=lambda c: _COMPOSE_ORDER.index(c["id"]))
    out = text
    for _ in range(passes):
        for c in order:
            if not INSTRUCTIONS[c["id"]].check(out, c["args"]):
                out = INSTRUCTIONS[c["id"]].repair(out, c["args"])
        if all(follows(out, constraints)):
            break
    return out
