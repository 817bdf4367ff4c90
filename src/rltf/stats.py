"""Interval estimates for accuracies, and the paired t-test `rltf compare` uses between methods over seeds."""
from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (well-behaved at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _betacf(a: float, b: float, x: float, iterations: int = 300, eps: float = 3e-16) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iterations + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def paired_t_test(a: list[float], b: list[float]) -> dict[str, float] | None:
    """Paired t-test of a - b over matched pairs (e.g. seeds): mean difference, t, two-sided p, n.
    None with fewer than 2 pairs. Identical differences (sd 0): p = 0 if they are not 0, else 1."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values paired with {len(b)}")
    n = len(a)
    if n < 2:
        return None
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0.0:
        return {"mean_diff": mean, "t": math.copysign(math.inf, mean) if mean else 0.0,
                "p": 0.0 if mean else 1.0, "n": n}
    t = mean / (sd / math.sqrt(n))
    return {"mean_diff": mean, "t": t, "p": t_two_sided_p(t, n - 1), "n": n}


def mcnemar_one_sided(b: int, c: int) -> float:
    """Exact McNemar test, one-sided: P(X >= b) for X ~ Binomial(b + c, 1/2), where b and c are the
    discordant pairs (e.g. wrong answers fixed only with the critique, only with correctness-only
    feedback). Small p: the first condition wins more often than chance allows. b = c = 0: p = 1."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    return min(1.0, sum(math.comb(n, k) for k in range(b, n + 1)) / 2 ** n)


def mcnemar_two_sided(b: int, c: int) -> float:
    """Exact McNemar test, two-sided: 2 P(X >= max(b, c)), capped at 1. Small p: one condition wins
    more often than chance allows, either way (the counts say which)."""
    return min(1.0, 2 * mcnemar_one_sided(max(b, c), min(b, c)))


def mcnemar_lower_bound(difference: int) -> float:
    """The smallest two-sided McNemar p any split into discordant pairs can give when only the
    difference d = b - c is known (the counts of fixes, not which answers): 2 * 0.5 ** |d| capped at
    1 (b = |d|, c = 0 or the reverse; more discordant pairs with the same d only raise p). So p >=
    this bound; a bound above 0.05 rules significance out."""
    return min(1.0, 2 * 0.5 ** abs(difference))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment for m tests at once (family-wise error): the i-th smallest p is
    multiplied by m - i (i from 0), made non-decreasing in that order and capped at 1; returned in
    the input's order. Reject where the adjusted p < alpha. Monotone: raising any input p never
    lowers an adjusted one, so lower bounds in give lower bounds out."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def holm_per_point(tests: dict) -> dict:
    """``{row: {point: test with "p"}}`` -> the same, each test given ``p_holm``: Holm over the family
    of tests at the same point (every row that has one there)."""
    for p in {p for cells in tests.values() for p in cells}:
        family = [cells[p] for cells in tests.values() if p in cells]
        for test, adjusted in zip(family, holm([t["p"] for t in family])):
            test["p_holm"] = adjusted
    return tests
