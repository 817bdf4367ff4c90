"""Agreement between annotators, and between people and programmatic or judge feedback.

Records are annotation records (``rltf label-studio import`` or ``rltf annotate``) holding ``Span``s
(:func:`rltf.spans.annotate.read_annotations`). An item is one (prompt, answer) pair; every pair of
annotators of an item is compared: span F1 with the matching of ``rltf eval-rm``
(:mod:`rltf.spans.match`: equal label, IoU >= 0.5, one-to-one), pooled over all pairs as
2 * matches / (spans of one + spans of the other); the correct/incorrect verdict where both gave one.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any, Sequence

from rltf.spans.match import match_spans, span_ranges


LABELS = ("positive", "negative")


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def item_key(record: dict) -> tuple[str, str]:
    return record["prompt"].strip(), record["answer"].strip()


def _pooled_f1(pairs: Sequence[tuple[dict, dict]], min_iou: float) -> dict[str, Any]:
    counts = {label: [0, 0] for label in LABELS}  # matches, spans of both sides
    for a, b in pairs:
        ra, rb = span_ranges(a["answer"], a["spans"]), span_ranges(b["answer"], b["spans"])
        for label in LABELS:
            pa, pb = [x for x in ra if x[2] == label], [x for x in rb if x[2] == label]
            counts[label][0] += match_spans(pa, pb, min_iou)
            counts[label][1] += len(pa) + len(pb)
    f1 = {label: (2 * m / n if n else None) for label, (m, n) in counts.items()}
    m, n = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    return {"span_f1": 2 * m / n if n else None, "span_f1_by_label": f1, "pairs": len(pairs)}


def agreement(records: Sequence[dict], reference: Sequence[dict] = (), min_iou: float = 0.5) -> dict[str, Any]:
    """Between the annotators of ``records``; and, with ``reference`` (e.g. a critic's or a judge's
    records for the same answers), between each person and that feedback."""
    by_item: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        by_item[item_key(r)].append(r)
    pairs = [(a, b) for rs in by_item.values() for a, b in combinations(rs, 2) if a["annotator"] != b["annotator"]]
    verdicts = [(a.get("correct"), b.get("correct")) for a, b in pairs
                if a.get("correct") is not None and b.get("correct") is not None]
    by_annotator: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_annotator[r["annotator"]].append(r)
    out: dict[str, Any] = {
        "records": len(records), "items": len(by_item),
        "items_with_several_annotators": sum(len({r["annotator"] for r in rs}) > 1 for rs in by_item.values()),
        "between_annotators": {**_pooled_f1(pairs, min_iou),
                               "verdict_agreement": (sum(x == y for x, y in verdicts) / len(verdicts)) if verdicts else None,
                               "verdict_pairs": len(verdicts)},
        "annotators": {name: {"records": len(rs), "critique_chars_mean": mean([len(r["critique"]) for r in rs]),
                              "spans_per_record": mean([len(r["spans"]) for r in rs]),
                              "labels": {label: sum(s.label == label for r in rs for s in r["spans"]) for label in LABELS}}
                       for name, rs in sorted(by_annotator.items())},
        "min_iou": min_iou,
    }
    if reference:
        ref = {item_key(r): r for r in reference}
        against = [(r, ref[item_key(r)]) for r in records if item_key(r) in ref]
        out["against_reference"] = {**_pooled_f1(against, min_iou), "items_without_reference":
                                    sum(1 for r in records if item_key(r) not in ref)}
    return out
