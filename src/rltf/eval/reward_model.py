"""Scoring a span reward model on held-out annotations: span precision / recall / F1 and parse failures.

Each predicted span is located in the answer (rltf.spans.locate; a quote found nowhere is a false
positive). A predicted occurrence is a true positive when it has the same label as a gold span and
their character ranges overlap with IoU >= ``iou`` (default 0.5); matching is one-to-one, greedy in
order of IoU. Records whose output does not parse count as failures and contribute their gold spans
to the false negatives (the model gave no reward for them).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from rltf.spans.align import locate
from rltf.spans.match import match_spans, prf, span_ranges  # noqa: F401 - match_spans re-exported

LABELS = ("positive", "negative")


def evaluate_reward_model(rm, records: Sequence[dict], iou: float = 0.5, examples: int = 3) -> dict[str, Any]:
    """Generate for every record, parse, and compare spans with the gold annotations."""
    start = time.perf_counter()
    outputs = rm.generate([r["prompt"] for r in records], [r["answer"] for r in records])
    counts = {label: {"tp": 0, "pred": 0, "gold": 0} for label in LABELS}
    failures: dict[str, int] = {}
    lenient = 0
    shown = []
    for record, output in zip(records, outputs):
        gold = span_ranges(record["answer"], record["spans"])
        before = rm.lenient
        critique, reason = rm.read(output)
        lenient += rm.lenient - before
        pred: list[tuple[int, int, str]] = []
        n_not_found = {label: 0 for label in LABELS}
        if critique is None:
            failures[reason] = failures.get(reason, 0) + 1
        else:
            for span in critique.spans:
                m = locate(record["answer"], span.quote)
                if m.kind == "not_found":
                    n_not_found[span.label] += 1
                pred += [(s, e, span.label) for s, e in m.ranges]
        for label in LABELS:
            p = [x for x in pred if x[2] == label]
            g = [x for x in gold if x[2] == label]
            counts[label]["tp"] += match_spans(p, g, iou)
            counts[label]["pred"] += len(p) + n_not_found[label]
            counts[label]["gold"] += len(g)
        if len(shown) < examples:
            shown.append({"answer": record["answer"], "gold": record["critique"], "output": output})
    tp = sum(c["tp"] for c in counts.values())
    n_pred = sum(c["pred"] for c in counts.values())
    n_gold = sum(c["gold"] for c in counts.values())
    n_failed = sum(failures.values())
    return {
        "n": len(records), "iou": iou, **prf(tp, n_pred, n_gold),
        "by_label": {label: prf(c["tp"], c["pred"], c["gold"]) for label, c in counts.items()},
        "parse_failure_rate": n_failed / len(records) if records else 0.0, "parse_failures": failures,
        "lenient_parse_rate": lenient / len(records) if records else 0.0,
        "examples": shown, "seconds": time.perf_counter() - start,
    }
