"""``rltf compare``'s report: the tables (Markdown, with the paired tests) and the curves (PNG) of
a summary from :func:`rltf.eval.compare.summarize`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable


def markdown(summary: dict[str, Any]) -> str:
    by_task = summary.get("by_task")
    if not by_task:
        return _metric_markdown(summary, summary["metric"], summary["table"], {})
    parts = []
    done, total = summary.get("runs_done"), summary.get("runs_total")
    if done is not None and done < total:
        left = summary.get("time_left")
        pace = (f" The other {left['runs']} need about {hours(left['seconds'])} of compute at the pace of "
                "the finished runs (each estimated by the finished runs of its task and method)." if left else "")
        parts.append(f"**Partial report: {done} of {total} runs finished** (cells average the seeds that "
                     f"have finished; the rest are n/a).{pace}\n")
    for task, metrics in by_task.items():
        if len(by_task) > 1:
            parts.append(f"### {task}\n")
        if not any(row["points"] for data in metrics.values() for row in data["table"].values()):
            parts.append("No finished runs yet.\n")
            continue
        for metric, data in metrics.items():
            parts.append(_metric_markdown(summary, metric, data["table"], data["significance"],
                                          data.get("contrasts", {})))
        items = summary.get("item_tests", {}).get(task)
        if items:
            parts.append(item_tests_markdown(summary["points"], items, f"against {summary['baseline']}"))
        pairs = summary.get("item_contrasts", {}).get(task)
        if pairs:
            parts.append(item_tests_markdown(summary["points"], pairs, "in the contrasts (a - b)"))
        uses = summary.get("feedback_use", {}).get(task)
        if uses:
            parts.append(feedback_use_markdown(summary["points"], uses, OWN_ANSWERS))
        drafts = summary.get("draft_feedback_use", {}).get(task)
        if drafts:
            parts.append(feedback_use_markdown(summary["points"], drafts, DRAFTS))
        verbatim = summary.get("draft_verbatim", {}).get(task)
        if verbatim:
            parts.append(feedback_use_markdown(summary["points"], verbatim, DRAFTS, VERBATIM))
        wall = summary.get("wall_min", {}).get(task)
        if wall:
            parts.append("Wall time per run (mean over finished seeds, evaluations included): "
                         + ", ".join(f"{n} {m:.1f} min" for n, m in wall.items()) + "."
                         + _estimated_note(summary.get("wall_estimated_runs", {}).get(task, 0)) + "\n")
    return "\n".join(parts)


def hours(seconds: float) -> str:
    """1.2 h, or 25 min under an hour."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def p_text(p: float, bound: bool = False) -> str:
    """A p-value with the digits that matter: 0.06, 0.004, < 0.001; a lower bound keeps its value (5e-04)."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.3f}" if p >= 0.001 else f"{p:.0e}" if bound else "< 0.001"


def _estimated_note(n_runs: int) -> str:
    if not n_runs:
        return ""
    return (f" {n_runs} of these runs have sittings from before every sitting was recorded, filled in from their"
            " progress bars (model loading not counted): their times are lower bounds.")


def points_table(points: list[int], rows: dict[str, dict[str, Any]], cell: Callable[[Any], str]) -> list[str]:
    """A Markdown table with a row per name and a column per budget point: ``cell(value)`` for each
    row's value at the point (``rows[name][str(point)]``), n/a where the row has none."""
    lines = ["| method | " + " | ".join(f"{p:,} tokens" for p in points) + " |", "|---|" + "---|" * len(points)]
    for name, cells in rows.items():
        values = [cells.get(str(p)) for p in points]
        lines.append(f"| {name} | " + " | ".join("n/a" if v is None else cell(v) for v in values) + " |")
    return lines


def _tests_markdown(points: list[int], tests: dict[str, Any]) -> list[str]:
    """One row per tested name (or pair): mean difference (p, Holm p, pairs) at each point."""
    return points_table(points, tests, lambda t: f"{t['mean_diff']:+.3f} (p {p_text(t['p'])}, Holm "
                                                 f"{p_text(t['p_holm'])}, n {t['n']}){' *' if t['p_holm'] < 0.05 else ''}")


def _mean_cell(c: dict[str, Any]) -> str:
    if math.isnan(c["ci95_half_width"]):
        return f"{c['mean']:.3f}"
    return f"{c['mean']:.3f} ± {c['ci95_half_width']:.3f}"


def _metric_markdown(summary: dict[str, Any], metric: str, table: dict[str, Any], tests: dict[str, Any],
                     pairs: dict[str, Any] | None = None) -> str:
    points = summary["points"]
    lines = [f"Held-out {metric} at equal generated-token budgets; mean ± 95 % t-interval over seeds "
             f"{summary['seeds']} (one seed: no interval).", "",
             *points_table(points, {name: row["points"] for name, row in table.items()}, _mean_cell)]
    if tests and not any(tests.values()):
        lines += ["", f"Difference to {summary['baseline']}: no paired test yet (it needs a method and "
                      f"{summary['baseline']} finished under at least 2 common seeds)."]
    elif tests:
        lines += ["", f"Difference to {summary['baseline']} (paired t-test over seeds: p, its Holm adjustment over the "
                      "methods at that budget point, pairs; * Holm-adjusted p < 0.05):", "",
                  *_tests_markdown(points, tests)]
    if pairs and any(pairs.values()):
        lines += ["", "Contrasts, a - b (paired t-test over the seeds both have; Holm over the contrasts at that "
                      "budget point; * Holm-adjusted p < 0.05):", "", *_tests_markdown(points, pairs)]
    elif pairs:
        lines += ["", "Contrasts " + ", ".join(pairs) + ": no paired test yet (each needs 2 common seeds)."]
    return "\n".join(lines) + "\n"


def item_tests_markdown(points: list[int], items: dict[str, Any], what: str) -> str:
    """Runs compared item by item (:mod:`rltf.eval.item_tests`), one table per metric."""
    parts = []
    for metric, tests in items.items():
        lines = [f"Item by item, {metric} {what}: each held-out item's first answer in both runs of a "
                 "seed, pooled over the seeds both have. Cell: difference, the discordant items `right in the "
                 "first only / in the second only` with the exact McNemar p for 0/1 outcomes, the paired t-test "
                 "over items otherwise, Holm over the rows at that budget point (* Holm-adjusted p < 0.05), and "
                 "the pairs `n`:", "", *points_table(points, tests, _item_cell)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _item_cell(c: dict[str, Any]) -> str:
    split = f"{c['only_a']} / {c['only_b']}, " if c["test"] == "mcnemar" else ""
    star = " *" if c["p_holm"] < 0.05 else ""
    return f"{c['mean_diff']:+.3f} ({split}p {p_text(c['p'])}, Holm {p_text(c['p_holm'])}, n {c['n']}){star}"


OWN_ANSWERS = "Wrong greedy first answers of the trained policy"
DRAFTS = ("The initial model's wrong greedy answers (the same drafts for every method and seed, `eval_drafts`; "
          "they stay when the policy no longer errs)")


FIXED = ("Does the critique's content help?", "fixed by")
VERBATIM = ("Does the critique make the policy keep its wrong answer?", "handed back word for word by")


def feedback_use_markdown(points: list[int], uses: dict[str, Any], what: str, outcome=FIXED) -> str:
    """Does the critique's content help? Fixes (or verbatim repeats) with the critique vs
    correctness-only feedback, pooled over seeds."""
    question, verb = outcome
    lines = [f"{question} {what}, {verb} the policy's revision with the "
             "critic's critique vs with correctness-only feedback (\"your answer was incorrect\"), summed over "
             "the finished seeds: `critique / correctness of wrong`, and the two-sided exact McNemar p of a "
             "difference with its Holm adjustment over the methods at that budget point (`≥`: a lower bound, "
             "for runs that logged only the counts; * Holm-adjusted p < 0.05, `+` more with the critique, "
             "`-` fewer):", "", *points_table(points, uses, _feedback_use_cell)]
    return "\n".join(lines) + "\n"


def _feedback_use_cell(c: dict[str, Any]) -> str:
    if c["wrong"] == 0:
        return "no wrong answers"
    pval = f"p {p_text(c['p'])}" if c["exact"] else f"p ≥ {p_text(c['p'], bound=True)}"
    if "p_holm" in c:
        pval += f", Holm {'' if c['holm_exact'] else '≥ '}{p_text(c['p_holm'], bound=not c['holm_exact'])}"
    way = "+" if c["fixed_critic"] > c["fixed_correctness"] else "-"
    star = f" *{way}" if c.get("holm_exact") and c["p_holm"] < 0.05 else ""
    return f"{c['fixed_critic']} / {c['fixed_correctness']} of {c['wrong']} ({pval}){star}"


def line_styles(names: list[str]) -> dict[str, tuple[int, bool]]:
    """A colour index and dashed-or-not per run name: every method its own colour, and a variant
    named after another ("rltf-sd-correctness") dashed in that method's colour, so the pair reads as
    one method with two kinds of feedback."""
    out: dict[str, tuple[int, bool]] = {}
    for name in names:
        parent = next((p for p in names if p != name and name.startswith(p + "-") and p in out), None)
        out[name] = (out[parent][0], True) if parent else (len({c for c, _ in out.values()}), False)
    return out


# The range a metric can take, for the curves' bands: a t-interval over two seeds is wide (t = 12.7),
# and an accuracy's band below 0 or above 1 says nothing. Other metrics are not clipped.
_UNIT = ("accuracy", "round2_accuracy", "format_rate", "fix_rate", "draft_fix_rate", "verbatim", "draft_verbatim")


def metric_range(metric: str) -> tuple[float, float] | None:
    """(low, high) a metric cannot leave, or None: rates in [0, 1], revision-use differences in [-1, 1]."""
    if metric.endswith("revision_use"):
        return (-1.0, 1.0)
    return (0.0, 1.0) if metric.split("/")[0] in _UNIT else None


#: more runs than this are drawn as small multiples, one panel each (one plot of twelve bands is unreadable)
PANELS_ABOVE = 6


def curve_series(row: dict[str, Any], bounds: tuple[float, float] | None):
    """-> budget points, means, band low and high (clipped to ``bounds``), and each seed's (x, value)."""
    pts = sorted(((int(p), c) for p, c in row["points"].items()), key=lambda pc: pc[0])
    xs = [p for p, _ in pts]
    means = [c["mean"] for _, c in pts]
    half = [0.0 if math.isnan(c["ci95_half_width"]) else c["ci95_half_width"] for _, c in pts]
    lo, hi = [m - h for m, h in zip(means, half)], [m + h for m, h in zip(means, half)]
    if bounds is not None:
        lo, hi = [max(v, bounds[0]) for v in lo], [min(v, bounds[1]) for v in hi]
    seeds = [(p, v) for p, c in pts for v in c.get("values", [])]
    return xs, means, lo, hi, seeds


def plot(summary: dict[str, Any], path: Path, table: dict[str, Any] | None = None, metric: str | None = None,
         title: str | None = None) -> None:
    """:func:`curves_figure` written to ``path`` (PNG)."""
    fig = curves_figure(summary, table, metric, title)
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_figure(summary: dict[str, Any], table: dict[str, Any] | None = None, metric: str | None = None,
                  title: str | None = None):
    """The curves of one metric against generated tokens: mean over seeds with its 95 % band (clipped
    to the metric's range). Up to :data:`PANELS_ABOVE` runs share one plot; more get a panel each,
    with every seed's value as a dot and the baseline's mean (``summary["baseline"]``) in each panel.
    -> the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summary["table"] if table is None else table
    metric = metric or summary["metric"]
    bounds = metric_range(metric)
    names = [n for n, row in table.items() if row["points"]]
    styles = line_styles(list(table))
    if len({c for c, _ in styles.values()}) <= 10:
        palette = plt.get_cmap("tab10")
    else:  # tab20's dark shades first: ten distinct hues before any light twin
        palette = lambda i: plt.get_cmap("tab20")((2 * i) % 20 + (2 * i) // 20 % 2)  # noqa: E731
    if len(names) > PANELS_ABOVE:
        return _panels(plt, summary, table, names, metric, bounds, styles, palette, title)
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for name in names:
        xs, means, lo, hi, _ = curve_series(table[name], bounds)
        color, dashed = styles[name]
        line, = ax.plot(xs, means, marker="o", label=name, color=palette(color), linestyle="--" if dashed else "-")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("generated tokens (budget point)")
    ax.set_ylabel(f"held-out {metric}")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _panels(plt, summary, table, names, metric, bounds, styles, palette, title):
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.4 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    baseline = summary.get("baseline")
    reference = curve_series(table[baseline], bounds) if baseline in names else None
    for ax, name in zip(axes.flat, names):
        xs, means, lo, hi, seeds = curve_series(table[name], bounds)
        color = palette(styles[name][0])
        if reference is not None and name != baseline:
            ax.plot(reference[0], reference[1], color="black", alpha=0.7, linestyle=":", linewidth=1.3)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
        ax.plot(xs, means, color=color, marker="o", markersize=3, linestyle="--" if styles[name][1] else "-")
        if seeds:
            ax.scatter(*zip(*seeds), s=9, color=color, alpha=0.55, zorder=3)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    key = [Line2D([], [], color="0.3", marker="o", markersize=3, label="mean over seeds (dashed: a variant)"),
           Patch(color="0.3", alpha=0.15, label="95 % t-interval over seeds, clipped to the metric's range"),
           Line2D([], [], color="0.3", marker="o", linestyle="", markersize=3, alpha=0.55, label="one seed")]
    if reference is not None:
        key.append(Line2D([], [], color="black", alpha=0.7, linestyle=":", label=f"{baseline}'s mean"))
    fig.legend(handles=key, loc="lower center", ncol=len(key), fontsize=8, frameon=False)
    fig.supxlabel("generated tokens (budget point)", fontsize=9, y=0.045)
    fig.supylabel(f"held-out {metric}", fontsize=9)
    fig.suptitle(f"{title}: {metric}" if title else metric, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
