"""Instruction following with verifiable constraints (IFEval, Zhou et al. 2023; METHODS §4.2).

A problem is a short writing request on a topic plus one to three instructions, each an IFEval
instruction type with its arguments. The checkers implement the semantics of lm-eval's IFEval
(``lm_eval/tasks/ifeval/instructions.py``, ``check_following``) and use its instruction wording,
because lm-eval's own checkers need NLTK data that cannot be downloaded here. Two counts differ
from lm-eval by necessity: sentences are split with IFEval's own regex splitter
(``instructions_util.split_into_sentences``) instead of NLTK's punkt model, and capital words are
the regex words ``\\w+`` that are upper case instead of NLTK word tokens. English is checked for the
case instructions as lm-eval does, with langdetect (seeded, so a verdict is the same every time).

Every checker also says *where* a response breaks its instruction (:meth:`Instruction.violations`:
character ranges of the offending text, e.g. each comma, the words past a word limit, each
capitalised word), which the task's critic turns into a critique and negative spans, and how to
repair a response with the smallest edit (:meth:`Instruction.repair`), which the feedback-use warm
start trains on (:meth:`ConstraintsTask.revise`).

Metrics: ``strict`` (prompt level: every instruction followed), ``instruction_strict`` (the share of
instructions followed) and ``instruction_loose`` (the same on IFEval's loose variants of the response:
its first line, its last line or both removed, asterisks removed). The reward is the share of
instructions followed; ``correct`` means all of them.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

from rltf.tasks.base import Problem, Score, Task

RELATIONS = ("less than", "at least")  # lm-eval's _COMPARISON_RELATION
ENDINGS = ("Any other questions?", "Is there anything else I can help with?")  # lm-eval's _ENDING_OPTIONS
KEYWORDS = ("garden", "river", "morning", "window", "coffee", "music", "bridge", "winter", "paper", "light",
            "forest", "kitchen", "friend", "market", "ocean", "letter", "candle", "train", "bread", "smile")
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


def count_words(text: str) -> int:
    """lm-eval's count: the regex words ``\\w+``."""
    return len(re.findall(r"\w+", text))


_ALPHABETS, _PREFIXES, _SUFFIXES = "([A-Za-z])", "(Mr|St|Mrs|Ms|Dr)[.]", "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)"
_ACRONYMS, _WEBSITES, _DIGITS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)", "[.](com|net|org|io|gov|edu|me)", "([0-9])"


def split_into_sentences(text: str) -> list[str]:
    """IFEval's regex sentence splitter (``instructions_util.split_into_sentences``)."""
    text = " " + text + "  "
    text = text.replace("\n", " ")
    text = re.sub(_PREFIXES, "\\1<prd>", text)
    text = re.sub(_WEBSITES, "<prd>\\1", text)
    text = re.sub(_DIGITS + "[.]" + _DIGITS, "\\1<prd>\\2", text)
    text = re.sub(r"\.{2,}", lambda m: "<prd>" * len(m.group(0)) + "<stop>", text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = re.sub(r"\s" + _ALPHABETS + "[.] ", " \\1<prd> ", text)
    text = re.sub(_ACRONYMS + " " + _STARTERS, "\\1<stop> \\2", text)
    text = re.sub(_ALPHABETS + "[.]" + _ALPHABETS + "[.]" + _ALPHABETS + "[.]", "\\1<prd>\\2<prd>\\3<prd>", text)
    text = re.sub(_ALPHABETS + "[.]" + _ALPHABETS + "[.]", "\\1<prd>\\2<prd>", text)
    text = re.sub(" " + _SUFFIXES + "[.] " + _STARTERS, " \\1<stop> \\2", text)
    text = re.sub(" " + _SUFFIXES + "[.]", " \\1<prd>", text)
    text = re.sub(" " + _ALPHABETS + "[.]", " \\1<prd>", text)
    for a, b in (('.”', '”.'), ('."', '".'), ('!"', '"!'), ('?"', '"?')):
        text = text.replace(a, b)
    text = text.replace(".", ".<stop>").replace("?", "?<stop>").replace("!", "!<stop>").replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    if sentences and not sentences[-1]:
        sentences = sentences[:-1]
    return sentences


def is_english(text: str) -> bool:
    """langdetect's verdict, seeded; text it cannot classify counts as English (lm-eval's rule)."""
    import langdetect
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    try:
        return langdetect.detect(text) == "en"
    except langdetect.LangDetectException:
        return True


def _relation_ok(count: int, relation: str, n: int) -> bool:
    return count < n if relation == "less than" else count >= n


def _sentence_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges of the sentences :func:`split_into_sentences` finds, located in ``text``."""
    out, pos = [], 0
    for sentence in split_into_sentences(text):
        head = sentence[:20]
        at = text.find(head, pos) if head else -1
        if at < 0:
            continue
        end = min(len(text), at + len(sentence))
        out.append((at, end))
        pos = end
    return out


@dataclass(frozen=True)
class Violation:
    """Where a response breaks an instruction: ``ranges`` of offending text (may be empty, e.g. a
    missing keyword has no place), and the facts a critique states (``counts``, ``quotes``)."""

    kind: str
    ranges: tuple[tuple[int, int], ...]
    detail: dict


class Instruction:
    """One IFEval instruction type: its id, how its arguments are drawn, its wording (lm-eval's),
    its checker, where a response breaks it, and the smallest repair."""

    id = ""

    def sample(self, rng: random.Random) -> dict:
        return {}

    def describe(self, args: dict) -> str:
        raise NotImplementedError

    def check(self, text: str, args: dict) -> bool:
        raise NotImplementedError

    def violations(self, text: str, args: dict) -> Violation:
        """Call only when ``check`` is False."""
        return Violation(self.id, (), {})

    def satisfied(self, text: str, args: dict) -> tuple[tuple[int, int], ...]:
        """Ranges of text that satisfy an inclusion instruction (positive spans); () for others."""
        return ()

    def repair(self, text: str, args: dict) -> str:
        """``text`` changed as little as possible so that it follows the instruction."""
        raise NotImplementedError


class NoComma(Instruction):
    id = "punctuation:no_comma"

    def describe(self, args):
        return "In your entire response, refrain from the use of any commas."

    def check(self, text, args):
        return not re.search(r"\,", text)

    def violations(self, text, args):
        commas = [m.start() for m in re.finditer(",", text)]
        before = [re.findall(r"\w+", text[:i])[-1:] for i in commas]
        return Violation(self.id, tuple((i, i + 1) for i in commas),
                         {"count": len(commas), "after": [w[0] for w in before if w]})

    def repair(self, text, args):
        return re.sub(r"\s*,", "", text)


class NumberOfWords(Instruction):
    id = "length_constraints:number_words"

    def sample(self, rng):
        relation = rng.choice(RELATIONS)
        return {"relation": relation, "num_words": rng.choice((15, 20, 25, 30) if relation == "less than" else (40, 50))}

    def describe(self, args):
        return f"Answer with {args['relation']} {args['num_words']} words."

    def check(self, text, args):
        return _relation_ok(count_words(text), args["relation"], args["num_words"])

    def violations(self, text, args):
        words = list(re.finditer(r"\w+", text))
        detail = {"count": len(words), "relation": args["relation"], "limit": args["num_words"]}
        if args["relation"] == "less than":  # the words from the limit on
            first = words[args["num_words"] - 1]
            detail["from"] = first.group(0)
            return Violation(self.id, ((first.start(), len(text.rstrip())),), detail)
        return Violation(self.id, (), detail)

    def repair(self, text, args):
        n = args["num_words"]
        words = list(re.finditer(r"\w+", text))
        if args["relation"] == "less than":
            cut = text[:words[n - 2].end()] if n >= 2 else ""
            return cut.rstrip(" ,;:-") + "."
        filler = " ".join(["It was a day I will remember for a long time."] * n)
        return _fill_to(text, filler, n)


def _fill_to(text: str, filler: str, n: int) -> str:
    """``text`` with words of ``filler`` appended until it has ``n`` words."""
    need = n - count_words(text)
    extra = re.findall(r"\S+", filler)
    out, added = text.rstrip(), 0
    for token in extra:
        if added >= need:
            break
        out += " " + token
        added += len(re.findall(r"\w+", token))
    return out if out.endswith((".", "!", "?")) else out + "."


class NumberOfSentences(Instruction):
    id = "length_constraints:number_sentences"

    def sample(self, rng):
        relation = rng.choice(RELATIONS)
        return {"relation": relation, "num_sentences": rng.choice((2, 3) if relation == "less than" else (4, 5))}

    def describe(self, args):
        return f"Your response should contain {args['relation']} {args['num_sentences']} sentences."

    def check(self, text, args):
        return _relation_ok(len(split_into_sentences(text)), args["relation"], args["num_sentences"])

    def violations(self, text, args):
        ranges = _sentence_ranges(text)
        detail = {"count": len(split_into_sentences(text)), "relation": args["relation"],
                  "limit": args["num_sentences"]}
        if args["relation"] == "less than" and len(ranges) >= args["num_sentences"]:
            start = ranges[args["num_sentences"] - 1][0]
            detail["from"] = text[start:start + 30].split()[0] if text[start:].split() else ""
            return Violation(self.id, ((start, len(text.rstrip())),), detail)
        return Violation(self.id, (), detail)

    def repair(self, text, args):
        ranges = _sentence_ranges(text)
        n = args["num_sentences"]
        if args["relation"] == "less than":
            return text[:ranges[n - 2][1]].rstrip() if n >= 2 and len(ranges) >= n - 1 else text
        out = text.rstrip()
        if out and not out.endswith((".", "!", "?")):
            out += "."
        fillers = ["It was a good day.", "I will remember it.", "Everyone smiled.", "Then we went home.",
                   "The end came too soon.", "I want to go back."]
        k = 0
        while len(split_into_sentences(out)) < n and k < 20:
            out += " " + fillers[k % len(fillers)]
            k += 1
        return out


class NumberOfParagraphs(Instruction):
    id = "length_constraints:number_paragraphs"

    def sample(self, rng):
        return {"num_paragraphs": rng.choice((2, 3))}

    def describe(self, args):
        return (f"There should be {args['num_paragraphs']} paragraphs. Paragraphs are separated with the markdown "
                "divider: ***")

    @staticmethod
    def paragraphs(text: str) -> int | None:
        parts = re.split(r"\s?\*\*\*\s?", text)
        n = len(parts)
        for index, part in enumerate(parts):
            if not part.strip():
                if index in (0, len(parts) - 1):
                    n -= 1
                else:
                    return None  # an empty paragraph between two dividers: never followed
        return n

    def check(self, text, args):
        return self.paragraphs(text) == args["num_paragraphs"]

    def violations(self, text, args):
        return Violation(self.id, (), {"count": self.paragraphs(text), "limit": args["num_paragraphs"]})

    def repair(self, text, args):
        sentences = [text[a:b].strip() for a, b in _sentence_ranges(text)] or [text.strip()]
        n = args["num_paragraphs"]
        while len(sentences) < n:
            sentences.append("That is all I wanted to say.")
        size = -(-len(sentences) // n)
        groups = [" ".join(sentences[i:i + size]) for i in range(0, len(sentences), size)]
        while len(groups) > n:
            groups[-2:] = [groups[-2] + " " + groups[-1]]
        while len(groups) < n:
            groups.append("That is all I wanted to say.")
        return "\n***\n".join(g.replace("***", "") for g in groups)


class KeywordExistence(Instruction):
    id = "keywords:existence"

    def sample(self, rng):
        return {"keywords": sorted(rng.sample(KEYWORDS, rng.choice((1, 2))))}

    def describe(self, args):
        return f"Include keywords {args['keywords']} in the response."

    def check(self, text, args):
        return all(re.search(k, text, flags=re.IGNORECASE) for k in args["keywords"])

    def violations(self, text, args):
        missing = [k for k in args["keywords"] if not re.search(k, text, flags=re.IGNORECASE)]
        return Violation(self.id, (), {"missing": missing})

    def satisfied(self, text, args):
        return tuple((m.start(), m.end()) for k in args["keywords"] for m in re.finditer(k, text, flags=re.IGNORECASE))

    def repair(self, text, args):
        missing = [k for k in args["keywords"] if not re.search(k, text, flags=re.IGNORECASE)]
        sentence = f"I thought of the {missing[0]}" + "".join(f" and the {k}" for k in missing[1:]) + "."
        return _append_sentence(text, sentence)


def _append_sentence(text: str, sentence: str) -> str:
    out = text.rstrip()
    if out and not out.endswith((".", "!", "?", '"')):
        out += "."
    return (out + " " + sentence).strip()


class ForbiddenWords(Instruction):
    id = "keywords:forbidden_words"

    def sample(self, rng):
        return {"forbidden_words": sorted(rng.sample(("the", "and", "very", "really", "just", "day"), 2))}

    def describe(self, args):
        return f"Do not include keywords {args['forbidden_words']} in the response."

    def _found(self, text, args):
        return [m for w in args["forbidden_words"] for m in re.finditer(r"\b" + w + r"\b", text, flags=re.IGNORECASE)]

    def check(self, text, args):
        return not self._found(text, args)

    def violations(self, text, args):
        found = sorted(self._found(text, args), key=lambda m: m.start())
        return Violation(self.id, tuple((m.start(), m.end()) for m in found),
                         {"words": sorted({m.group(0).lower() for m in found}), "count": len(found)})

    def repair(self, text, args):
        out = text
        for w in args["forbidden_words"]:
            out = re.sub(r"\s*\b" + w + r"\b", "", out, flags=re.IGNORECASE)
        return out.strip()


class KeywordFrequency(Instruction):
    id = "keywords:frequency"

    def sample(self, rng):
        relation = rng.choice(RELATIONS)
        return {"keyword": rng.choice(KEYWORDS), "frequency": rng.choice((2, 3)), "relation": relation}

    def describe(self, args):
        return f"In your response, the word {args['keyword']} should appear {args['relation']} {args['frequency']} times."

    def check(self, text, args):
        return _relation_ok(len(re.findall(args["keyword"], text, flags=re.IGNORECASE)), args["relation"],
                            args["frequency"])

    def violations(self, text, args):
        found = list(re.finditer(args["keyword"], text, flags=re.IGNORECASE))
        detail = {"count": len(found), "relation": args["relation"], "limit": args["frequency"],
                  "keyword": args["keyword"]}
        extra = found[args["frequency"] - 1:] if args["relation"] == "less than" else []
        return Violation(self.id, tuple((m.start(), m.end()) for m in extra), detail)

    def repair(self, text, args):
        k, n = args["keyword"], args["frequency"]
        if args["relation"] == "less than":
            found = list(re.finditer(r"\s*" + k, text, flags=re.IGNORECASE))
            out = text
            for m in reversed(found[n - 1:]):
                out = out[:m.start()] + out[m.end():]
            return out
        have = len(re.findall(k, text, flags=re.IGNORECASE))
        return _append_sentence(text, " ".join([f"The {k} again."] * (n - have)))


class LetterFrequency(Instruction):
    id = "keywords:letter_frequency"

    def sample(self, rng):
        return {"letter": rng.choice("bkpvwy"), "let_frequency": rng.choice((2, 3)), "let_relation": "less than"}

    def describe(self, args):
        return (f"In your response, the letter {args['letter']} should appear {args['let_relation']} "
                f"{args['let_frequency']} times.")

    def check(self, text, args):
        return _relation_ok(Counter(text.lower())[args["letter"]], args["let_relation"], args["let_frequency"])

    def violations(self, text, args):
        at = [i for i, ch in enumerate(text.lower()) if ch == args["letter"]]
        extra = at[args["let_frequency"] - 1:] if args["let_relation"] == "less than" else []
        words = [re.search(r"\w*$", text[:i]).group(0) + re.match(r"\w*", text[i:]).group(0) for i in extra]
        return Violation(self.id, tuple((i, i + 1) for i in extra),
                         {"count": len(at), "relation": args["let_relation"], "limit": args["let_frequency"],
                          "letter": args["letter"], "words": list(dict.fromkeys(words))})

    def repair(self, text, args):
        letter, n = args["letter"], args["let_frequency"]
        keep, out = n - 1, []
        for word in re.split(r"(\s+)", text):
            count = word.lower().count(letter)
            if count and keep >= count:
                keep -= count
            elif count:
                continue  # drop the word that holds one letter too many
            out.append(word)
        return re.sub(r"\s{2,}", " ", "".join(out)).strip()


class Lowercase(Instruction):
    id = "change_case:english_lowercase"

    def describe(self, args):
        return "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed."

    def check(self, text, args):
        return text.islower() and is_english(text)

    def violations(self, text, args):
        words = list(re.finditer(r"\w*[A-Z]\w*", text))
        return Violation(self.id, tuple((m.start(), m.end()) for m in words),
                         {"words": list(dict.fromkeys(m.group(0) for m in words))})

    def repair(self, text, args):
        return text.lower()


class Capitals(Instruction):
    id = "change_case:english_capital"

    def describe(self, args):
        return "Your entire response should be in English, and in all capital letters."

    def check(self, text, args):
        return text.isupper() and is_english(text)

    def violations(self, text, args):
        words = list(re.finditer(r"\w*[a-z]\w*", text))
        return Violation(self.id, tuple((m.start(), m.end()) for m in words),
                         {"words": list(dict.fromkeys(m.group(0) for m in words))})

    def repair(self, text, args):
        return text.upper()


class EndPhrase(Instruction):
    id = "startend:end_checker"

    def sample(self, rng):
        return {"end_phrase": rng.choice(ENDINGS)}

    def describe(self, args):
        return f"Finish your response with this exact phrase {args['end_phrase']}. No other words should follow this phrase."

    def check(self, text, args):
        return text.strip().strip('"').lower().endswith(args["end_phrase"].strip().lower())

    def violations(self, text, args):
        stripped = text.rstrip()
        at = stripped.lower().rfind(args["end_phrase"].lower())
        if at >= 0:  # the phrase is there, with words after it
            start = at + len(args["end_phrase"])
        else:  # the last sentence is what should have been the phrase
            ranges = _sentence_ranges(stripped)
            start = ranges[-1][0] if ranges else 0
        while start < len(stripped) and stripped[start].isspace():
            start += 1
        tail = stripped[start:]
        return Violation(self.id, ((start, len(stripped)),) if tail else (),
                         {"phrase": args["end_phrase"], "tail": " ".join(tail.split()[-6:]), "present": at >= 0})

    def satisfied(self, text, args):
        at = text.lower().rfind(args["end_phrase"].lower())
        return ((at, at + len(args["end_phrase"])),) if at >= 0 else ()

    def repair(self, text, args):
        phrase = args["end_phrase"]
        at = text.lower().rfind(phrase.lower())
        if at >= 0:
            return text[:at + len(phrase)]
        return _append_sentence(text.strip().strip('"'), phrase)


class Quotation(Instruction):
    id = "startend:quotation"

    def describe(self, args):
        return "Wrap your entire response with double quotation marks."

    def check(self, text, args):
        value = text.strip()
        return len(value) > 1 and value[0] == '"' and value[-1] == '"'

    def violations(self, text, args):
        value = text.strip()
        return Violation(self.id, (), {"starts": value[:1] == '"', "ends": value[-1:] == '"'})

    def repair(self, text, args):
        return '"' + text.strip().strip('"') + '"'


class BulletList(Instruction):
    id = "detectable_format:number_bullet_lists"

    def sample(self, rng):
        return {"num_bullets": rng.choice((2, 3))}

    def describe(self, args):
        return (f"Your answer must contain exactly {args['num_bullets']} bullet points. Use the markdown bullet "
                "points such as:\n* This is point 1. \n* This is point 2")

    @staticmethod
    def bullets(text: str) -> list[re.Match]:
        found = list(re.finditer(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE))
        found += list(re.finditer(r"^\s*-.*$", text, flags=re.MULTILINE))
        return sorted(found, key=lambda m: m.start())

    def check(self, text, args):
        return len(self.bullets(text)) == args["num_bullets"]

    def violations(self, text, args):
        found = self.bullets(text)
        extra = found[args["num_bullets"]:]
        return Violation(self.id, tuple((m.start(), m.end()) for m in extra),
                         {"count": len(found), "limit": args["num_bullets"]})

    def repair(self, text, args):
        found = self.bullets(text)
        n = args["num_bullets"]
        if len(found) > n:
            out = text
            for m in reversed(found[n:]):
                out = out[:m.start()] + out[m.end():]
            return re.sub(r"\n{2,}", "\n", out).strip()
        lines = [text.rstrip()] if text.strip() else []
        lines += [f"* Point {k + 1}." for k in range(len(found), n)]
        return "\n".join(lines)


class JsonFormat(Instruction):
    id = "detectable_format:json_format"

    def describe(self, args):
        return "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```."

    @staticmethod
    def _strip(text: str) -> str:
        return (text.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
                .removeprefix("```").removesuffix("```").strip())

    def check(self, text, args):
        try:
            json.loads(self._strip(text))
        except ValueError:
            return False
        return True

    def violations(self, text, args):
        inner = self._strip(text)
        try:
            json.loads(inner)
            pos = 0
        except json.JSONDecodeError as err:
            pos = err.pos
        offset = text.find(inner) if inner else 0
        start = offset + pos
        end = min(len(text), start + max(1, len((text[start:].split() or [""])[0])))
        return Violation(self.id, ((start, end),) if end > start else (), {"at": text[start:end]})

    def repair(self, text, args):
        return json.dumps({"response": text.strip()})


class Title(Instruction):
    id = "detectable_format:title"

    def describe(self, args):
        return "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."

    def check(self, text, args):
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", text))

    def satisfied(self, text, args):
        return tuple((m.start(), m.end()) for m in re.finditer(r"<<[^\n]+>>", text))

    def repair(self, text, args):
        return "<<A short note>>\n" + text.strip()


class Postscript(Instruction):
    id = "detectable_content:postscript"

    def sample(self, rng):
        return {"postscript_marker": rng.choice(("P.S.", "P.P.S"))}

    def describe(self, args):
        return f"At the end of your response, please explicitly add a postscript starting with {args['postscript_marker']}"

    def _pattern(self, args):
        marker = args["postscript_marker"]
        if marker == "P.P.S":
            return r"\s*p\.\s?p\.\s?s.*$"
        if marker == "P.S.":
            return r"\s*p\.\s?s\..*$"
        return r"\s*" + marker.lower() + r".*$"

    def check(self, text, args):
        return bool(re.findall(self._pattern(args), text.lower(), flags=re.MULTILINE))

    def satisfied(self, text, args):
        return tuple((m.start(), m.end()) for m in re.finditer(self._pattern(args), text.lower(), flags=re.MULTILINE))

    def repair(self, text, args):
        return text.rstrip() + f"\n\n{args['postscript_marker']} Thank you for reading."


class Placeholders(Instruction):
    id = "detectable_content:number_placeholders"

    def sample(self, rng):
        return {"num_placeholders": rng.choice((1, 2))}

    def describe(self, args):
        return (f"The response must contain at least {args['num_placeholders']} placeholders represented by square "
                "brackets, such as [address].")

    def check(self, text, args):
        return len(re.findall(r"\[.*?\]", text)) >= args["num_placeholders"]

    def violations(self, text, args):
        return Violation(self.id, (), {"count": len(re.findall(r"\[.*?\]", text)), "limit": args["num_placeholders"]})

    def repair(self, text, args):
        need = args["num_placeholders"] - len(re.findall(r"\[.*?\]", text))
        names = ["[name]", "[place]", "[date]", "[address]"]
        return _append_sentence(text, "Signed " + " at ".join(names[:max(need, 1)]) + ".")


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
BASE_TEXT = ("I want to tell you about {t}. It made me think about small things that matter. "
             "I hope you enjoy reading this as much as I enjoyed writing it.")
# the order in which a composed answer is made to follow its instructions (later edits must not undo earlier ones)
_COMPOSE_ORDER = ("length_constraints:number_sentences", "length_constraints:number_words",
                  "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
                  "punctuation:no_comma", "detectable_content:number_placeholders",
                  "length_constraints:number_paragraphs", "detectable_format:number_bullet_lists",
                  "detectable_format:title", "detectable_content:postscript", "startend:end_checker",
                  "change_case:english_lowercase", "change_case:english_capital", "startend:quotation",
                  "detectable_format:json_format")


def follows(text: str, constraints: list[dict]) -> list[bool]:
    """For each constraint ``{"id", "args"}``: does ``text`` follow it (strict)?"""
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
