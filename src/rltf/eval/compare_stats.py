"""``rltf compare``'s statistics over finished runs: the metric at each budget point, mean and 95 %
t-interval over seeds, the paired t-test of each method against the baseline, and the pooled
McNemar test of feedback use. Pure functions of the runs' results (``{"name", "seed", "evals"}``)."""
from __future__ import annotations

import math
import statistics
from typing import Any

from rltf.errors import ConfigError
from rltf.eval.compare_config import CompareConfig
from rltf.stats import holm, holm_per_point, mcnemar_lower_bound, mcnemar_two_sided, paired_t_test


T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def eval_at(evals: list[dict[str, Any]], point: int) -> dict[str, Any] | None:
    """The evaluation that stands for a budget point: the first whose token count reached it (the base
    model's single evaluation stands for every point); None if the run has not got there."""
    if len(evals) == 1 and evals[0]["tokens"] == 0:
        return evals[0]
    return next((e for e in evals if e["tokens"] >= point), None)


def at_points(evals: list[dict[str, Any]], points: list[int], metric: str) -> dict[int, tuple[float, int] | None]:
    """The metric at each budget point (:func:`eval_at`) -> {point: (value, tokens) or None}."""
    key = f"eval/{metric}"
    out: dict[int, tuple[float, int] | None] = {}
    for p in points:
        hit = eval_at(evals, p)
        if hit is not None and key not in hit:
            raise ConfigError(f"metric {metric!r} not logged; available: "
                              + ", ".join(k[5:] for k in hit if k.startswith("eval/")))
        out[p] = None if hit is None else (float(hit[key]), int(hit["tokens"]))
    return out


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval over seeds (nan for one seed)."""
    m = statistics.mean(values)
    if len(values) < 2:
        return m, float("nan")
    return m, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def metric_table(cfg: CompareConfig, results: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """Per run name: the metric at each budget point over seeds (mean, 95 % interval, values by seed).
    A metric a run did not log at a point (e.g. revision_use of a run without wrong answers) is left out."""
    table: dict[str, dict[str, Any]] = {}
    for name in cfg.methods:
        runs = [r for r in results if r["name"] == name]
        per_point = {}
        for p in cfg.points:
            found = []
            for r in runs:
                try:
                    hit = at_points(r["evals"], [p], metric)[p]
                except ConfigError:
                    if metric == cfg.metric:
                        raise
                    hit = None
                if hit is not None:
                    found.append((r["seed"], *hit))
            if not found:
                continue
            mean, half = interval([v for _, v, _ in found])
            per_point[str(p)] = {"mean": mean, "ci95_half_width": half, "n_seeds": len(found),
                                 "seeds": [s for s, _, _ in found], "values": [v for _, v, _ in found],
                                 "tokens": [t for _, _, t in found]}
        table[name] = {"method": runs[0]["method"] if runs else None, "points": per_point}
    return table


def _paired(table: dict[str, dict[str, Any]], name: str, other: str) -> dict[str, dict[str, Any]]:
    """``name`` - ``other`` at each point: a paired t-test over the seeds both have (points with < 2 pairs left out)."""
    cells = {}
    for p, cell in table[name]["points"].items():
        base = table[other]["points"].get(p)
        if base is None:
            continue
        by_seed = dict(zip(base["seeds"], base["values"]))
        pairs = [(v, by_seed[s]) for s, v in zip(cell["seeds"], cell["values"]) if s in by_seed]
        test = paired_t_test([a for a, _ in pairs], [b for _, b in pairs])
        if test is not None:
            cells[p] = test
    return cells


def significance(table: dict[str, dict[str, Any]], baseline: str | None) -> dict[str, dict[str, Any]]:
    """Each run name against ``baseline`` at each point: a paired t-test over the seeds both have,
    and its Holm-adjusted p (``p_holm``) over every method tested at that point."""
    if baseline is None or baseline not in table:
        return {}
    return holm_per_point({name: _paired(table, name, baseline) for name in table if name != baseline})


def contrasts(table: dict[str, dict[str, Any]], pairs: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Chosen pairs of run names, ``a - b`` at each point (e.g. a correctness-only variant against its
    method): the paired t-test over common seeds, Holm-adjusted over the pairs at that point.
    -> ``{"a - b": {point: test}}``."""
    return holm_per_point({f"{a} - {b}": _paired(table, a, b) for a, b in pairs if a in table and b in table})


# what a revision of a wrong first answer did -> (its rate's metric, its discordant pairs' metric)
OUTCOMES = {"fixed": ("fix_rate", "fixed_only"), "verbatim": ("verbatim", "verbatim_only")}


def _fixes(ev: dict[str, Any], kind: str, prefix: str = "", outcome: str = "fixed") -> tuple[int, int] | None:
    """(wrong first answers, how many of them had ``outcome``) with ``kind``'s feedback in one
    evaluation, or None."""
    wrong, rate = ev.get(f"eval/{prefix}wrong_first/{kind}"), f"eval/{prefix}{OUTCOMES[outcome][0]}/{kind}"
    if wrong is None or (wrong and rate not in ev):  # (a run from before the outcome was logged)
        return None
    return int(wrong), round(ev.get(rate, 0.0) * wrong)


def item_level_pairs(record: dict[str, Any], revised: str = "drafts", outcome: str = "fixed",
                     a: str = "critic", b: str = "correctness") -> tuple[int, int, int]:
    """From one line of a run's ``eval_outcomes.jsonl`` (item-level outcomes, docs/RESULTS.md): the
    wrong answers ``revised`` ("own": the policy's, "drafts": the initial policy's) that had
    ``outcome`` ("fixed" or "verbatim") with feedback ``a`` only, with ``b`` only, and how many were
    revised -> (only a, only b, n): McNemar's discordant pairs, recomputed from the items."""
    kinds = record[revised]
    wrong_a, wrong_b = set(kinds[a]["wrong"]), set(kinds[b]["wrong"])
    if wrong_a != wrong_b:
        raise ValueError(f"step {record.get('step')}: {a} and {b} revised different answers")
    got_a, got_b = set(kinds[a][outcome]), set(kinds[b][outcome])
    return len(got_a - got_b), len(got_b - got_a), len(wrong_a)


def discordant_pairs(ev: dict[str, Any], fixed_critic: int, fixed_correctness: int,
                prefix: str = "", outcome: str = "fixed") -> tuple[int, int] | None:
    """(fixed only with the critique, fixed only with correctness-only feedback) in one evaluation:
    logged (``eval/fixed_only/*``), or determined by the counts when one feedback fixed none (then
    no answer was fixed by both); None when only the counts are known and they do not determine it.
    ``outcome`` "verbatim": the same for revisions that hand the first answer back unchanged."""
    only = OUTCOMES[outcome][1]
    if f"eval/{prefix}{only}/critic" in ev:
        return int(ev[f"eval/{prefix}{only}/critic"]), int(ev[f"eval/{prefix}{only}/correctness"])
    if min(fixed_critic, fixed_correctness) == 0:
        return fixed_critic, fixed_correctness
    return None


def feedback_use(cfg: CompareConfig, results: list[dict[str, Any]], prefix: str = "",
                 outcome: str = "fixed") -> dict[str, dict[str, Any]]:
    """Per run name and budget point, pooled over seeds: the wrong first answers, how many the critic's
    critique fixed and how many correctness-only feedback fixed (the same greedy answers, so a paired
    design), and the two-sided exact McNemar p of a difference (the counts say which way). Runs that
    logged which answers each fixed (``eval/fixed_only/*``) give the exact p; otherwise only b - c is
    known and the p is a lower bound (``exact`` False). Names without both evaluations are left out.
    ``p_holm``: Holm-adjusted over the methods with wrong answers at that point (a lower bound,
    ``holm_exact`` False, when any p of the family is one).
    ``prefix`` "draft_": the same for the revisions of the initial policy's answers (``eval_drafts``).
    ``outcome`` "verbatim": revisions that hand the wrong answer back word for word instead of fixes
    (the cells' ``fixed_*`` keys then count those)."""
    out: dict[str, dict[str, Any]] = {}
    for name in cfg.methods:
        cells = {}
        for p in cfg.points:
            hits = [ev for r in results if r["name"] == name and (ev := eval_at(r["evals"], p)) is not None]
            pairs = [(ev, _fixes(ev, "critic", prefix, outcome), _fixes(ev, "correctness", prefix, outcome))
                     for ev in hits]
            pairs = [(ev, c, k) for ev, c, k in pairs if c is not None and k is not None]
            if not pairs:
                continue
            wrong = sum(c[0] for _, c, _ in pairs)
            fixed_c, fixed_k = sum(c[1] for _, c, _ in pairs), sum(k[1] for _, _, k in pairs)
            discordant = [discordant_pairs(ev, c[1], k[1], prefix, outcome) for ev, c, k in pairs]
            exact = None not in discordant
            cell = {"runs": len(pairs), "wrong": wrong, "fixed_critic": fixed_c, "fixed_correctness": fixed_k,
                    "exact": exact}
            if exact:
                only_c, only_k = sum(d[0] for d in discordant), sum(d[1] for d in discordant)
                cell.update(only_critic=only_c, only_correctness=only_k, p=mcnemar_two_sided(only_c, only_k))
            else:
                cell["p"] = mcnemar_lower_bound(fixed_c - fixed_k)
            cells[str(p)] = cell
        if cells:
            out[name] = cells
    for p in map(str, cfg.points):  # the family: every method with wrong answers at this point
        family = [cells[p] for cells in out.values() if p in cells and cells[p]["wrong"]]
        bound = not all(c["exact"] for c in family)  # Holm is monotone: bounds in, bounds out
        for cell, adjusted in zip(family, holm([c["p"] for c in family])):
            cell.update(p_holm=adjusted, holm_exact=not bound)
    return out
