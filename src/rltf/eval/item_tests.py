"""Item-level paired tests between runs. Every held-out evaluation records each item's first answer
(``eval_outcomes.jsonl``, key ``"first"``: ``{problem id: {"correct", "reward", task metrics}}``), and
every run of a study is evaluated on the same held-out items, so two methods can be compared item by
item: far more power than a t-test over three seeds' accuracies. Pure functions of the records.

Pooled over seeds, the pairs are (seed, item): the same items appear once per seed, so a test is of
the methods on this held-out set over seeds, not over held-out sets (docs/RESULTS.md says so where
it is used)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from rltf.stats import holm_per_point, mcnemar_two_sided, paired_t_test

# eval/<metric> -> the item's key in "first" (the task's own metrics keep their names)
ITEM_KEY = {"accuracy": "correct", "mean_reward": "reward"}


def item_key(metric: str) -> str:
    return ITEM_KEY.get(metric, metric)


def load_outcomes(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """A run's ``eval_outcomes.jsonl`` -> {step: record} ({} when the run has none)."""
    path = Path(run_dir) / "eval_outcomes.jsonl"
    if not path.exists():
        return {}
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not JSON ({err.msg})") from None
            out[int(record["step"])] = record
    return out


def paired_values(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """Two evaluations' items (``record["first"]``) -> [(a's value, b's value)] per item, in id order.
    Raises ValueError when they were not evaluated on the same items or lack ``key``."""
    if set(a) != set(b):
        raise ValueError(f"the runs were evaluated on different items ({len(set(a) ^ set(b))} not shared)")
    try:
        return [(float(a[i][key]), float(b[i][key])) for i in sorted(a)]
    except KeyError:
        raise ValueError(f"item metric {key!r} not recorded; recorded: {', '.join(sorted(next(iter(a.values()))))}") \
            from None


def item_difference(pairs: list[tuple[float, float]]) -> dict[str, Any] | None:
    """a - b over paired items. 0/1 values (correct or not): the exact two-sided McNemar test on the
    discordant items (``only_a``: right in a only); other values (a loose score in [0, 1]): the paired
    t-test over items. -> {n, mean_a, mean_b, mean_diff, p, test, [only_a, only_b]}; None with no pairs."""
    if not pairs:
        return None
    n = len(pairs)
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    cell: dict[str, Any] = {"n": n, "mean_a": sum(a) / n, "mean_b": sum(b) / n, "mean_diff": (sum(a) - sum(b)) / n}
    if all(v in (0.0, 1.0) for v in a + b):
        only_a = sum(1 for x, y in pairs if x > y)
        only_b = sum(1 for x, y in pairs if y > x)
        cell.update(test="mcnemar", only_a=only_a, only_b=only_b, p=mcnemar_two_sided(only_a, only_b))
    else:
        t = paired_t_test(a, b)
        cell.update(test="paired-t", p=1.0 if t is None else t["p"])
    return cell


def item_tests(pairs: list[tuple[str, str]], points: list[int], metrics: list[str],
               evaluations: Callable[[str, int], list[dict[str, Any] | None]],
               contrasts: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """Each pair ``(a, b)`` of run names (a method and the baseline, or a chosen contrast), ``a - b`` at each
    budget point, item by item and pooled over the seeds both have, for each metric the items record;
    Holm over the pairs at each point and metric (the family is ``pairs``).

    ``evaluations(name, point)`` -> per seed (in the seeds' order, the same list for every name) that
    run's ``"first"`` items at that point, or None where the run has not got there or recorded none.
    -> {metric: {a (``contrasts``: "a - b"): {str(point): cell of :func:`item_difference` with ``seeds``
    and ``p_holm``}}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in metrics:
        key = item_key(metric)
        tests: dict[str, dict[str, Any]] = {}
        for name, other in pairs:
            cells = {}
            for p in points:
                mine, base = evaluations(name, p), evaluations(other, p)
                seeds = [(a, b) for a, b in zip(mine, base) if a is not None and b is not None]
                if not seeds:
                    continue
                try:
                    values = [pair for a, b in seeds for pair in paired_values(a, b, key)]
                except ValueError:
                    if key == item_key(metrics[0]):
                        raise
                    values = []  # a metric this task's items do not record (e.g. revision_use)
                cell = item_difference(values)
                if cell is not None:
                    cells[str(p)] = {**cell, "seeds": len(seeds)}
            if cells:
                tests[f"{name} - {other}" if contrasts else name] = cells
        if tests:
            out[metric] = holm_per_point(tests)
    return out
