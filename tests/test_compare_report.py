"""rltf compare's statistics and report: budget points, paired t and McNemar with Holm, feedback use,
curves; every number by hand."""
import pytest

from rltf.errors import ConfigError
from rltf.eval.compare_stats import at_points, interval


def test_at_points_takes_the_first_eval_that_reached_each_point():
    evals = [{"step": 0, "tokens": 0, "eval/accuracy": 0.1}, {"step": 2, "tokens": 130, "eval/accuracy": 0.3},
             {"step": 4, "tokens": 260, "eval/accuracy": 0.5}]
    got = at_points(evals, [0, 100, 200, 300], "accuracy")
    assert got == {0: (0.1, 0), 100: (0.3, 130), 200: (0.5, 260), 300: None}
    base = [{"step": 0, "tokens": 0, "eval/accuracy": 0.2}]
    assert at_points(base, [0, 500], "accuracy") == {0: (0.2, 0), 500: (0.2, 0)}
    with pytest.raises(ConfigError, match="not logged"):
        at_points(evals, [0], "fact_f1")


def test_interval_is_a_t_interval():
    mean, half = interval([0.2, 0.4])
    assert mean == pytest.approx(0.3) and half == pytest.approx(12.706 * (0.1414213562 / 2 ** 0.5), rel=1e-6)


def test_contrasts_test_chosen_pairs_with_holm_over_the_pairs(tmp_path):
    from rltf.eval.compare import CompareConfig, summarize
    from rltf.eval.compare_report import markdown

    values = {"grpo": [0.4, 0.4, 0.6], "sd": [0.5, 0.6, 0.7], "sd-correctness": [0.4, 0.5, 0.6]}
    cfg = CompareConfig(output_dir=str(tmp_path), methods={n: {"method": "grpo"} for n in values}, seeds=[0, 1, 2],
                        budget_tokens=100, contrasts=[("sd", "grpo"), ("sd-correctness", "grpo")])
    results = [{"name": n, "method": "grpo", "seed": s, "evals": [{"tokens": 0, "eval/accuracy": 0.3},
                                                                   {"tokens": 110, "eval/accuracy": v}]}
               for n, vs in values.items() for s, v in enumerate(vs)]
    pairs = summarize(cfg, results)["by_task"]["add2"]["accuracy"]["contrasts"]
    # sd - grpo: differences 0.1, 0.2, 0.1: t = 4 on 2 df, p 0.0572; sd-correctness - grpo: 0, 0.1, 0: t = 1, p 0.4226
    first, second = pairs["sd - grpo"]["100"], pairs["sd-correctness - grpo"]["100"]
    assert first["t"] == pytest.approx(4.0) and second["t"] == pytest.approx(1.0)
    assert second["p"] == pytest.approx(0.4226, abs=1e-4)
    assert first["p_holm"] == pytest.approx(2 * first["p"]) and second["p_holm"] == pytest.approx(second["p"])
    start = pairs["sd - grpo"]["0"]  # every run starts at 0.3: no difference
    assert (start["mean_diff"], start["p"]) == (0.0, 1.0)
    text = markdown(summarize(cfg, results))
    assert "Contrasts, a - b" in text and "| sd-correctness - grpo |" in text and "+0.033 (p 0.42, Holm 0.42, n 3)" in text
    one_seed = [r for r in results if r["seed"] == 0]
    assert "Contrasts sd - grpo, sd-correctness - grpo: no paired test yet" in markdown(summarize(cfg, one_seed))


def test_paired_t_test_by_hand():
    import math

    from rltf.stats import paired_t_test, t_two_sided_p

    for t in (0.5, 2.5, 12.706):  # closed forms for 1 and 2 degrees of freedom
        assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
        assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=1e-4)  # the table's t(0.975, 4)
    # differences .1, .2, .1: mean .1333, sd .0577, t = 4.0 on 2 df: p = 1 - 4/sqrt(18)
    test = paired_t_test([0.5, 0.6, 0.7], [0.4, 0.4, 0.6])
    assert test["t"] == pytest.approx(4.0) and test["p"] == pytest.approx(1 - 4 / math.sqrt(18)) and test["n"] == 3
    assert paired_t_test([0.5], [0.4]) is None
    assert paired_t_test([0.5, 0.6], [0.4, 0.5])["p"] == 0.0  # the same gain on every seed


def test_mcnemar_by_hand_and_its_lower_bound():
    from rltf.stats import mcnemar_lower_bound, mcnemar_one_sided, mcnemar_two_sided

    assert mcnemar_one_sided(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_one_sided(3, 1) == pytest.approx(5 / 16)  # P(X >= 3), X ~ Bin(4, 1/2): (4 + 1) / 16
    assert mcnemar_one_sided(0, 4) == 1.0 and mcnemar_one_sided(0, 0) == 1.0
    assert mcnemar_one_sided(1, 1) == pytest.approx(3 / 4)
    assert mcnemar_two_sided(5, 0) == mcnemar_two_sided(0, 5) == pytest.approx(1 / 16)
    assert mcnemar_two_sided(0, 7) == pytest.approx(1 / 64) and mcnemar_two_sided(2, 2) == 1.0
    with pytest.raises(ValueError):
        mcnemar_one_sided(-1, 2)
    # the bound from b - c alone is never above the exact p of any split with that difference
    for b in range(0, 12):
        for c in range(0, 12):
            assert mcnemar_lower_bound(b - c) <= mcnemar_two_sided(b, c) + 1e-12
    assert mcnemar_lower_bound(3) == mcnemar_lower_bound(-3) == 0.25 == mcnemar_two_sided(0, 3)  # attained
    assert mcnemar_lower_bound(0) == mcnemar_lower_bound(1) == 1.0


def test_holm_adjustment_by_hand():
    from rltf.stats import holm

    # sorted 0.01 (x4), 0.03 (x3), 0.04 (x2 = 0.08, raised to the running 0.09), 0.5 (x1)
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6]) and holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == [] and holm([0.02]) == [0.02]


def test_feedback_use_pools_fixes_over_seeds_exactly_or_as_a_bound(tmp_path):
    from rltf.eval.compare import CompareConfig, summarize
    from rltf.eval.compare_stats import feedback_use
    from rltf.eval.compare_report import markdown

    cfg = CompareConfig(output_dir=str(tmp_path), methods={"grpo": {"method": "grpo"}, "rltf-fm": {"method": "rltf-fm"}},
                        seeds=[0, 1], budget_tokens=100, metrics=["revision_use"])

    def ev(tokens, wrong, fix_c, fix_k, only=None):
        e = {"tokens": tokens, "eval/accuracy": 0.5, "eval/wrong_first/critic": wrong,
             "eval/wrong_first/correctness": wrong, "eval/fix_rate/critic": fix_c / wrong,
             "eval/fix_rate/correctness": fix_k / wrong, "eval/revision_use": (fix_c - fix_k) / wrong}
        if only is not None:
            e["eval/fixed_only/critic"], e["eval/fixed_only/correctness"] = only
        return e

    results = [
        # rltf-fm: logged which answers were fixed -> exact McNemar on the pooled discordant pairs
        {"name": "rltf-fm", "seed": 0, "evals": [ev(0, 20, 0, 0, (0, 0)), ev(120, 10, 4, 1, (3, 0))]},
        {"name": "rltf-fm", "seed": 1, "evals": [ev(0, 20, 0, 0, (0, 0)), ev(110, 12, 3, 1, (2, 0))]},
        # grpo: counts only (a run from before the pairs were logged) -> a lower bound 0.5 ** (b - c)
        {"name": "grpo", "seed": 0, "evals": [ev(0, 20, 0, 0), ev(105, 9, 2, 0)]},
        {"name": "grpo", "seed": 1, "evals": [ev(0, 20, 0, 0), ev(101, 9, 1, 1)]},
    ]
    uses = feedback_use(cfg, results)
    fm = uses["rltf-fm"]["100"]
    assert (fm["wrong"], fm["fixed_critic"], fm["fixed_correctness"], fm["runs"]) == (22, 7, 2, 2)
    assert fm["exact"] and (fm["only_critic"], fm["only_correctness"]) == (5, 0)
    assert fm["p"] == pytest.approx(1 / 16)  # two-sided: 2 * 0.5 ** 5
    g = uses["grpo"]["100"]
    assert (g["wrong"], g["fixed_critic"], g["fixed_correctness"]) == (18, 3, 1) and not g["exact"]
    assert g["p"] == pytest.approx(0.5)  # only b - c = 2 known: p >= 2 * 0.5 ** 2
    text = markdown(summarize(cfg, [{**r, "method": r["name"]} for r in results]))
    # Holm over the two methods at 100 tokens: 2 * 0.0625, then max(0.125, 0.5); grpo's bound makes both bounds
    assert fm["p_holm"] == pytest.approx(0.125) and g["p_holm"] == pytest.approx(0.5) and not fm["holm_exact"]
    # at 0 tokens no run fixed anything: the discordant pairs are known (0, 0) without the log, so p is exact
    assert "| rltf-fm | 0 / 0 of 40 (p 1.00, Holm 1.00) | 7 / 2 of 22 (p 0.06, Holm ≥ 0.12) |" in text
    assert "| grpo | 0 / 0 of 40 (p 1.00, Holm 1.00) | 3 / 1 of 18 (p ≥ 0.50, Holm ≥ 0.50) |" in text
    from rltf.eval.compare_stats import discordant_pairs

    assert discordant_pairs({}, 2, 0) == (2, 0) and discordant_pairs({}, 0, 3) == (0, 3)  # one side fixed none
    assert discordant_pairs({}, 2, 1) is None  # 2 and 1 fixes: 1 fixed by both, or none
    assert discordant_pairs({"eval/fixed_only/critic": 1, "eval/fixed_only/correctness": 0}, 2, 1) == (1, 0)
    assert "initial model's wrong greedy answers" not in text  # no draft evaluations logged
    from rltf.eval.compare_report import OWN_ANSWERS, feedback_use_markdown

    cells = {"m": {"100": {"wrong": 30, "fixed_critic": 1, "fixed_correctness": 8, "exact": True, "p": 0.0156,
                           "p_holm": 0.0312, "holm_exact": True},
                   "200": {"wrong": 0, "fixed_critic": 0, "fixed_correctness": 0, "exact": False, "p": 1.0}},
             "n": {"100": {"wrong": 30, "fixed_critic": 1, "fixed_correctness": 8, "exact": True, "p": 0.0156,
                           "p_holm": 0.0624, "holm_exact": True}}}  # significant alone, not after Holm
    text = feedback_use_markdown([100, 200], cells, OWN_ANSWERS)
    assert "| m | 1 / 8 of 30 (p 0.02, Holm 0.03) *- | no wrong answers |" in text
    assert "| n | 1 / 8 of 30 (p 0.02, Holm 0.06) | n/a |" in text
    from rltf.eval.compare_report import p_text

    assert (p_text(0.0625), p_text(0.0078), p_text(0.0004), p_text(1.0)) == ("0.06", "0.008", "< 0.001", "1.00")
    assert p_text(0.00049, bound=True) == "5e-04"  # "p ≥ 5e-04", not "p ≥ < 0.001"
    # the same test on the revisions of the initial model's drafts (eval_drafts: eval/draft_* keys)
    drafted = [{**r, "method": r["name"], "evals": [{**e, **{k.replace("eval/", "eval/draft_", 1): v for k, v in e.items()
                                                            if k.startswith(("eval/wrong", "eval/fix"))}}
                                                   for e in r["evals"]]} for r in results]
    assert feedback_use(cfg, drafted, prefix="draft_") == uses
    summary = summarize(cfg, drafted)
    assert summary["draft_feedback_use"][cfg.task_names[0]] == uses
    assert "initial model's wrong greedy answers" in markdown(summary)


def test_summary_over_tasks_metrics_and_significance_against_the_baseline(tmp_path):
    from rltf.eval.compare import CompareConfig, summarize
    from rltf.eval.compare_report import markdown

    cfg = CompareConfig(output_dir=str(tmp_path), methods={"base": {"method": "base"}, "grpo": {"method": "grpo"},
                                                           "sdpo": {"method": "sdpo"}},
                        seeds=[0, 1, 2], budget_tokens=100, metrics=["revision_use"], tasks=["add2", "fact_summary"],
                        baseline="grpo")
    acc = {"grpo": [0.4, 0.4, 0.6], "sdpo": [0.5, 0.6, 0.7], "base": [0.3, 0.3, 0.3]}
    results = []
    for task in cfg.tasks:
        for name, values in acc.items():
            for seed, v in enumerate(values):
                evals = [{"step": 0, "tokens": 0, "eval/accuracy": 0.3, "eval/revision_use": 0.0}]
                if name != "base":
                    evals.append({"step": 5, "tokens": 120, "eval/accuracy": v + (0.1 if task == "fact_summary" else 0),
                                  "eval/revision_use": 0.05 * seed})
                results.append({"task": task, "name": name, "method": acc and name, "seed": seed, "evals": evals})
    summary = summarize(cfg, results)
    assert summary["tasks"] == ["add2", "fact_summary"] and summary["metrics"] == ["accuracy", "revision_use"]
    add2 = summary["by_task"]["add2"]["accuracy"]
    assert add2["table"]["sdpo"]["points"]["100"]["mean"] == pytest.approx(0.6)
    test = add2["significance"]["sdpo"]["100"]  # the hand-computed test above: t = 4 on 2 df
    assert test["t"] == pytest.approx(4.0) and test["n"] == 3
    assert summary["by_task"]["fact_summary"]["accuracy"]["table"]["grpo"]["points"]["100"]["mean"] == pytest.approx(1.7 / 3)
    assert "grpo" not in add2["significance"]  # the baseline is not tested against itself
    assert summary["table"] == add2["table"]  # the first task's first metric, as single-task files had it
    text = markdown(summary)
    assert "### fact_summary" in text and "Held-out revision_use" in text and "Difference to grpo" in text
    # Holm over base (t = -2.5, p 0.130) and sdpo (t = 4, p 0.057) against grpo: 2 * 0.057, then max(0.114, 0.130)
    assert test["p_holm"] == pytest.approx(2 * test["p"]) and test["p"] == pytest.approx(0.0572, abs=1e-4)
    assert add2["significance"]["base"]["100"]["p_holm"] == pytest.approx(0.1296, abs=1e-4)
    assert "+0.133 (p 0.06, Holm 0.11, n 3)" in text


def test_verbatim_repeats_are_pooled_and_tested_like_fixes(tmp_path):
    from rltf.eval.compare import CompareConfig, summarize
    from rltf.eval.compare_report import markdown
    from rltf.eval.compare_stats import feedback_use

    cfg = CompareConfig(output_dir=str(tmp_path), methods={"rltf-sd": {"method": "rltf-sd"}}, seeds=[0, 1, 2],
                        budget_tokens=100)

    def ev(verbatim=None):
        e = {"tokens": 120, "eval/accuracy": 0.5, "eval/draft_wrong_first/critic": 10,
             "eval/draft_wrong_first/correctness": 10, "eval/draft_fix_rate/critic": 0.1,
             "eval/draft_fix_rate/correctness": 0.3}
        if verbatim is not None:
            (vc, vk), (oc, ok) = verbatim
            e.update({"eval/draft_verbatim/critic": vc / 10, "eval/draft_verbatim/correctness": vk / 10,
                      "eval/draft_verbatim_only/critic": oc, "eval/draft_verbatim_only/correctness": ok})
        return e

    results = [{"name": "rltf-sd", "method": "rltf-sd", "seed": 0, "evals": [ev(((6, 1), (5, 0)))]},
               {"name": "rltf-sd", "method": "rltf-sd", "seed": 1, "evals": [ev(((4, 2), (3, 1)))]},
               {"name": "rltf-sd", "method": "rltf-sd", "seed": 2, "evals": [ev()]}]  # logged before verbatim
    cell = feedback_use(cfg, results, prefix="draft_", outcome="verbatim")["rltf-sd"]["100"]
    # seed 2 has no verbatim counts: left out, not counted as 0
    assert (cell["runs"], cell["wrong"], cell["fixed_critic"], cell["fixed_correctness"]) == (2, 20, 10, 3)
    assert (cell["only_critic"], cell["only_correctness"]) == (8, 1) and cell["p"] == pytest.approx(20 / 512)
    fixes = feedback_use(cfg, results, prefix="draft_")["rltf-sd"]["100"]
    assert (fixes["runs"], fixes["fixed_critic"], fixes["fixed_correctness"]) == (3, 3, 9)
    text = markdown(summarize(cfg, results))
    assert "Does the critique make the policy keep its wrong answer?" in text
    assert "| rltf-sd | 10 / 3 of 20 (p 0.04, Holm 0.04) *+ |" in text


def test_curve_styles_give_a_variant_its_methods_colour_dashed():
    from rltf.eval.compare_report import line_styles

    names = ["base", "grpo", "rltf-sd", "rltf-sd+fm", "sdpo", "sdpo-hybrid", "rltf-sd-correctness",
             "rltf-sd+fm-correctness"]
    styles = line_styles(names)
    assert styles["rltf-sd-correctness"] == (styles["rltf-sd"][0], True)
    assert styles["rltf-sd+fm-correctness"] == (styles["rltf-sd+fm"][0], True)
    # "sdpo-hybrid" starts with "sdpo-": a variant of SDPO, dashed in its colour
    assert styles["sdpo-hybrid"] == (styles["sdpo"][0], True)
    solid = [c for c, dashed in styles.values() if not dashed]
    assert len(solid) == len(set(solid)) == 5  # every method its own colour


def test_curves_bands_stay_inside_the_metrics_range():
    from rltf.eval.compare_report import curve_series, metric_range

    assert metric_range("accuracy") == metric_range("fix_rate/critic") == metric_range("draft_verbatim/critic") == (0, 1)
    assert metric_range("revision_use") == metric_range("draft_revision_use") == (-1, 1)
    assert metric_range("mean_reward") is None  # not a rate: not clipped
    row = {"points": {"100": {"mean": 0.4, "ci95_half_width": 0.9, "values": [0.3, 0.5]},
                      "0": {"mean": 0.2, "ci95_half_width": float("nan"), "values": [0.2]}}}
    xs, means, lo, hi, seeds = curve_series(row, (0.0, 1.0))
    assert xs == [0, 100] and means == [0.2, 0.4]  # in token order
    assert lo == [0.2, 0.0] and hi == [0.2, 1.0]  # 0.4 - 0.9 and 0.4 + 0.9 clipped; no interval: no band
    assert seeds == [(0, 0.2), (100, 0.3), (100, 0.5)]
    assert curve_series(row, None)[2] == [0.2, pytest.approx(-0.5)]


def _curve_table(n):
    return {f"m{i}": {"points": {"0": {"mean": 0.1, "ci95_half_width": float("nan"), "values": [0.1]},
                                 "100": {"mean": 0.05 * i, "ci95_half_width": 0.8, "values": [0.0, 0.1 * i]}}}
            for i in range(n)}


def test_curves_of_many_methods_are_small_multiples_with_the_baseline_in_each(tmp_path):
    import matplotlib.pyplot as plt

    from rltf.eval.compare_report import curves_figure, plot

    table = _curve_table(12)
    fig = curves_figure({"table": table, "metric": "accuracy", "baseline": "m1"})
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == list(table)  # one panel a method, in order
    for ax in panels:
        lines = [tuple(line.get_ydata()) for line in ax.get_lines()]
        # the method's mean, and in every other panel the baseline's mean (0.1, 0.05)
        assert (0.1, 0.05 * int(ax.get_title()[1:])) in lines
        assert len(lines) == (1 if ax.get_title() == "m1" else 2) and (0.1, 0.05) in lines
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        assert band.min() >= 0.0 and band.max() <= 1.0  # mean +- 0.8 clipped to [0, 1]
        assert len(ax.collections[1].get_offsets()) == 3  # every seed's value as a dot
    plt.close(fig)
    few = curves_figure({"table": _curve_table(3), "metric": "accuracy"})
    assert len(few.axes) == 1 and len(few.axes[0].get_lines()) == 3  # a few methods share one plot
    plt.close(few)
    plot({"table": table, "metric": "accuracy"}, tmp_path / "c.png")  # no baseline: no reference line
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
