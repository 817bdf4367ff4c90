"""Does a critique give the answer away? The leak guard shared by judges and critics.

A critique must never state the ground truth (METHODS §1). Judges and policies find many ways to
state it, so the text is read in several forms before the answer is looked for:

- as written, lower-cased (``71`` leaks in "the sum is 71" but not in "710");
- with punctuation, case and whitespace ignored ("PARIS!" leaks "Paris");
- for numeric answers, with number words read as numbers ("eighty-three", "eight three"), digits
  joined across single separators ("8 3", "8,3", "8_3"), and every arithmetic expression in the
  text evaluated ("80 + 3", "eighty plus three"), except expressions the question itself contains
  (restating "45 + 38" is not a leak).

Conservative on purpose: a false alarm costs one critique (it falls back to correctness-only and
is counted), a missed leak teaches the policy to copy answers from the critique.
"""
from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_SCALES = {"thousand": 10 ** 3, "million": 10 ** 6, "billion": 10 ** 9, "trillion": 10 ** 12}
_OPERATOR_WORDS = [(r"\bmultiplied by\b|\btimes\b", " * "), (r"\bdivided by\b|\bover\b", " / "),
                   (r"\bplus\b", " + "), (r"\bminus\b|\bnegative\b", " - ")]
_NUMBER = r"\d+(?:\.\d+)?"
_EXPRESSION = re.compile(rf"[(\s-]*{_NUMBER}[)\s]*(?:[-+*/^×x][(\s-]*{_NUMBER}[)\s]*)+")
MAX_DIGITS = 40  # numbers longer than this are not evaluated (no work for a hostile reply)


def _boxed_free(text: str) -> str:
    return text.replace("\\boxed", "")


def normalise_words(text: str) -> str:
    """Lower-case alphanumeric words separated by single spaces (punctuation and case ignored)."""
    return " ".join(re.findall(r"[^\W_]+", _boxed_free(text).lower()))


def words_to_numbers(text: str) -> str:
    """``text`` (lower-case, words separated by spaces) with English number words read as digits.

    "eighty three" -> "83", "one hundred and five" -> "105", "eight three" -> "8 3".
    """
    out: list[str] = []
    total = cur = 0
    last = None  # kind of the previous number word: unit, teen, tens, hundred, scale

    def flush():
        nonlocal total, cur, last
        if last is not None:
            out.append(str(total + cur))
        total = cur = 0
        last = None

    tokens = text.split(" ")
    for i, tok in enumerate(tokens):
        if tok in _UNITS:
            value = _UNITS[tok]
            kind = "unit" if value < 10 else "teen"
            if last in ("unit", "teen") or (last == "tens" and kind == "teen"):
                flush()
            cur += value
            last = kind
        elif tok in _TENS:
            if last in ("unit", "teen", "tens"):
                flush()
            cur += _TENS[tok]
            last = "tens"
        elif tok == "hundred" and last in ("unit", "teen", "tens"):
            cur *= 100
            last = "hundred"
        elif tok in _SCALES and last is not None and last != "scale":
            total += cur * _SCALES[tok]
            cur, last = 0, "scale"
        elif tok == "and" and last in ("hundred", "scale") and i + 1 < len(tokens) and (
                tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS):
            continue
        else:
            flush()
            out.append(tok)
    flush()
    return " ".join(out)


def numeric_forms(text: str) -> str:
    """The text as numbers: number words read, operator words as symbols, digits joined across separators."""
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", _boxed_free(text).lower())  # "eighty-three"
    body = words_to_numbers(" ".join(re.findall(r"[^\W_]+|[-+*/^×().,_']", text)))
    for pattern, symbol in _OPERATOR_WORDS:
        body = re.sub(pattern, symbol, body)
    body = re.sub(r"(?<=\d)(?: ?[,_'] ?| )(?=\d)", "", body)  # "8 3", "8,3", "8_3" -> "83"
    body = re.sub(r"(?<=\d) \. (?=\d)", ".", body)
    return re.sub(r"(?<![\d)]) *- *(?=\d)", " -", body)  # "- 7" -> "-7"


def _evaluate(expression: str) -> Fraction | None:
    """Value of + - * / ^ × x and parentheses over decimals, or None (malformed, too large, 1/0)."""
    tokens = re.findall(rf"{_NUMBER}|[-+*/^×x()]", expression)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom():
        tok = take() if peek() is not None else None
        if tok == "-":
            return -atom()
        if tok == "(":
            value = expr()
            if take() != ")":
                raise ValueError
            return value
        if tok is None or not tok[0].isdigit() or len(tok) > MAX_DIGITS:
            raise ValueError
        return Fraction(tok)

    def power():
        base = atom()
        if peek() == "^":
            take()
            exp = atom()
            if exp.denominator != 1 or abs(exp) > 64 or abs(base) > 10 ** 6:
                raise ValueError
            return base ** int(exp)
        return base

    def term():
        value = power()
        while peek() in ("*", "/", "×", "x"):
            op, rhs = take(), power()
            value = value / rhs if op == "/" else value * rhs
        return value

    def expr():
        value = term()
        while peek() in ("+", "-"):
            op, rhs = take(), term()
            value = value + rhs if op == "+" else value - rhs
        return value

    try:
        value = expr()
        return value if pos == len(tokens) else None
    except (ValueError, ZeroDivisionError, IndexError, OverflowError, RecursionError):
        return None


def _as_number(answer: str) -> Fraction | None:
    text = _boxed_free(answer).strip().strip("{}$ ").replace(",", "")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?|-?\d+/\d+", text) or len(text) > MAX_DIGITS:
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _whole(needle: str, body: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(needle)}(?![\w]|\.\d)", body) is not None


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", _boxed_free(text)).strip().strip(".").lower()


def leaks_answer(text: str, answer: str, question: str = "") -> bool:
    """True when ``text`` states the ground-truth ``answer`` in any of the forms in the module doc."""
    ans, body = _plain(answer), _plain(text)
    if not ans:
        return False
    if len(ans) > 24:
        return ans in body or (len(normalise_words(ans)) > 0 and normalise_words(ans) in normalise_words(text))
    if _whole(ans, body):
        return True
    words = normalise_words(answer)
    if words and _whole(words, normalise_words(text)):
        return True
    value = _as_number(answer)
    if value is None:
        return False
    forms = numeric_forms(text)
    canonical = str(value.numerator) if value.denominator == 1 else None
    if canonical is not None and _whole(canonical, forms):
        return True
    asked = {re.sub(r"\s+", "", m.group(0)).strip("()") for m in _EXPRESSION.finditer(numeric_forms(question))}
    for m in _EXPRESSION.finditer(forms):
        expression = re.sub(r"\s+", "", m.group(0))
        if expression.strip("()") in asked:
            continue
        if _evaluate(expression) == value:
            return True
    return False
