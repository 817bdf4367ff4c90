"""IFEval's punctuation, case, start/end and format instructions: no commas, lower case, capital
words, an end phrase, quotation marks, bullet lists, JSON, a title, a postscript."""
from __future__ import annotations

import json
import re

from rltf.tasks.constraints.base import ENDINGS, Instruction, Violation
from rltf.tasks.constraints.text import (append_sentence, is_english, sentence_ranges)


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
            ranges = sentence_ranges(stripped)
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
        return append_sentence(text.strip().strip('"'), phrase)


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
