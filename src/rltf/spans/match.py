"""Span matching shared by reward-model evaluation and annotator agreement.

Spans are character ranges with a label, ``(start, end, label)``. Two spans match when their labels
are equal and their ranges overlap with IoU >= ``iou`` (default 0.5); matching is one-to-one, greedy
in order of IoU. Precision, recall and F1 follow from the number of matches.
"""
from __future__ import annotations

from typing import Sequence

from rltf.feedback.base import Span
from rltf.spans.align import locate

Range = tuple[int, int, str]


def span_ranges(answer: str, spans: Sequence[Span]) -> list[Range]:
    """Each span located in ``answer`` (at its offset, or every occurrence); spans not found give none."""
    out = []
    for span in spans:
        out += [(s, e, span.label) for s, e in locate(answer, span.quote, span.start).ranges]
    return out


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def match_spans(pred: Sequence[Range], gold: Sequence[Range], min_iou: float = 0.5) -> int:
    """Number of one-to-one matches with equal labels and IoU >= ``min_iou``."""
    pairs = sorted(((iou(p[:2], g[:2]), i, j) for i, p in enumerate(pred) for j, g in enumerate(gold)
                    if p[2] == g[2]), reverse=True)
    used_p, used_g, tp = set(), set(), 0
    for score, i, j in pairs:
        if score < min_iou or i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        tp += 1
    return tp


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
