"""Critic for arithmetic (chain sums): the first wrong step, or which digits of the result are wrong."""
from __future__ import annotations

import re

from rltf.feedback.critics.common import GENERIC_WRONG, MISSING_BOX, boxed_span, finish, span_at
from rltf.feedback.base import Critique

_STEP = re.compile(r"(-?\d+)\s*([+\-])\s*(\d+)\s*=\s*(-?\d+)")
_PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands"]


def critique_arithmetic(problem, answer: str, score) -> Critique:
    truth = problem.answer.strip()
    if score.extracted is None:
        return finish(MISSING_BOX, [], truth)
    got = score.extracted.strip()
    if not re.fullmatch(r"-?\d+", got):
        return finish("The final answer must be a single integer, with nothing else inside \\boxed{}.",
                      boxed_span(answer), truth)
    for m in _STEP.finditer(answer):
        a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        right = a + b if op == "+" else a - b
        if right != c:
            where = _wrong_digits(str(c), str(right))
            text = (f"The step \"{m.group(0)}\" is wrong{': ' + where if where else ''}. Recompute it carefully, "
                    "then redo the later steps.")
            return finish(text, [span_at(answer, m.start(), m.end())] + boxed_span(answer), truth)
    if got.startswith("-") != truth.startswith("-"):
        return finish("The sign of your final answer is wrong.", boxed_span(answer), truth)
    g, t = got.lstrip("-"), truth.lstrip("-")
    if len(g) != len(t):
        text = (f"Your result has {len(g)} digit{'s' * (len(g) != 1)}, which is the wrong number of digits "
                "for this sum; recheck the carries.")
        return finish(text, boxed_span(answer), truth)
    wrong = [_PLACES[i] if i < len(_PLACES) else f"10^{i}" for i in range(len(g)) if g[-1 - i] != t[-1 - i]]
    if not wrong:
        return finish(GENERIC_WRONG, boxed_span(answer), truth)
    names = " and ".join(wrong)
    text = (f"The {names} digit{'s' * (len(wrong) > 1)} of your final answer {'are' if len(wrong) > 1 else 'is'} "
            f"wrong; the other digits are right. Recheck {'those columns' if len(wrong) > 1 else 'that column'} and the carries.")
    return finish(text, boxed_span(answer), truth)


def _wrong_digits(got: str, right: str) -> str:
    """Which digits of a step's result are wrong ("its tens digit is wrong; the other digits are
    right"), or "" when they cannot be compared place by place (another sign or number of digits)."""
    if got.startswith("-") != right.startswith("-") or len(got) != len(right):
        return ""
    g, t = got.lstrip("-"), right.lstrip("-")
    wrong = [_PLACES[i] if i < len(_PLACES) else f"10^{i}" for i in range(len(g)) if g[-1 - i] != t[-1 - i]]
    if not wrong:
        return ""
    many = len(wrong) > 1
    rest = "; the other digits are right" if len(wrong) < len(g) else ""
    return f"its {' and '.join(wrong)} digit{'s' * many} {'are' if many else 'is'} wrong{rest}"
