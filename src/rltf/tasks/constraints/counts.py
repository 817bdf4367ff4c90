"""IFEval's length and content instructions: word, sentence and paragraph counts, keywords to include,
avoid or repeat, letter frequency, placeholders."""
from __future__ import annotations

import re
from collections import Counter

from rltf.tasks.constraints.base import KEYWORDS, RELATIONS, Instruction, Violation
from rltf.tasks.constraints.text import (append_sentence, count_words, fill_to, relation_ok,
                                         sentence_ranges, split_into_sentences)


class NumberOfWords(Instruction):
    id = "length_constraints:number_words"

    def sample(self, rng):
        relation = rng.choice(RELATIONS)
        return {"relation": relation, "num_words": rng.choice((15, 20, 25, 30) if relation == "less than" else (40, 50))}

    def describe(self, args):
        return f"Answer with {args['relation']} {args['num_words']} words."

    def check(self, text, args):
        return relation_ok(count_words(text), args["relation"], args["num_words"])

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
        return fill_to(text, filler, n)


class NumberOfSentences(Instruction):
    id = "length_constraints:number_sentences"

    def sample(self, rng):
        relation = rng.choice(RELATIONS)
        return {"relation": relation, "num_sentences": rng.choice((2, 3) if relation == "less than" else (4, 5))}

    def describe(self, args):
        return f"Your response should contain {args['relation']} {args['num_sentences']} sentences."

    def check(self, text, args):
        return relation_ok(len(split_into_sentences(text)), args["relation"], args["num_sentences"])

    def violations(self, text, args):
        ranges = sentence_ranges(text)
        detail = {"count": len(split_into_sentences(text)), "relation": args["relation"],
                  "limit": args["num_sentences"]}
        if args["relation"] == "less than" and len(ranges) >= args["num_sentences"]:
            start = ranges[args["num_sentences"] - 1][0]
            detail["from"] = text[start:start + 30].split()[0] if text[start:].split() else ""
            return Violation(self.id, ((start, len(text.rstrip())),), detail)
        return Violation(self.id, (), detail)

    def repair(self, text, args):
        ranges = sentence_ranges(text)
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
        sentences = [text[a:b].strip() for a, b in sentence_ranges(text)] or [text.strip()]
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
        return append_sentence(text, sentence)


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
        return relation_ok(len(re.findall(args["keyword"], text, flags=re.IGNORECASE)), args["relation"],
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
        return append_sentence(text, " ".join([f"The {k} again."] * (n - have)))


class LetterFrequency(Instruction):
    id = "keywords:letter_frequency"

    def sample(self, rng):
        return {"letter": rng.choice("bkpvwy"), "let_frequency": rng.choice((2, 3)), "let_relation": "less than"}

    def describe(self, args):
        return (f"In your response, the letter {args['letter']} should appear {args['let_relation']} "
                f"{args['let_frequency']} times.")

    def check(self, text, args):
        return relation_ok(Counter(text.lower())[args["letter"]], args["let_relation"], args["let_frequency"])

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
        return append_sentence(text, "Signed " + " at ".join(names[:max(need, 1)]) + ".")
