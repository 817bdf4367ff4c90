"""Text measures with IFEval's semantics (lm-eval's ``instructions_util``): words, sentences,
English, count relations; and the two edits the repairs share (fill to a word count, append a
sentence)."""
from __future__ import annotations

import re

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


def relation_ok(count: int, relation: str, n: int) -> bool:
    return count < n if relation == "less than" else count >= n


def sentence_ranges(text: str) -> list[tuple[int, int]]:
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


def fill_to(text: str, filler: str, n: int) -> str:
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


def append_sentence(text: str, sentence: str) -> str:
    out = text.rstrip()
    if out and not out.endswith((".", "!", "?", '"')):
        out += "."
    return (out + " " + sentence).strip()
