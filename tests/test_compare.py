"""rltf compare: runs at equal token budgets, table and curves, resumable; budget-point logic by hand."""
import json

import pytest

from rltf.errors import ConfigError
from rltf.eval.compare import load_compare_config
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


def test_bad_compare_files(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("methods: {x: {method: nope}}\n")
    with pytest.raises(ConfigError, match="method of 'x'"):
        load_compare_config(f)
    f.write_text("methods: {x: {method: grpo}}\nbudget: 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_compare_config(f)
    for contrasts, message in (("[[x, y]]", "'y' is not one of the methods"), ("[[x, x]]", "with itself"),
                               ("[x]", "list of \\[name, name\\] pairs"), ("[[x, x, x]]", "pairs")):
        f.write_text(f"methods: {{x: {{method: grpo}}}}\ncontrasts: {contrasts}\n")
        with pytest.raises(ConfigError, match=message):
            load_compare_config(f)


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


def test_rltf_compare_end_to_end_and_resume(tmp_path, capsys):
    from rltf.cli import main

    f = tmp_path / "compare.yaml"
    f.write_text(
        f"output_dir: {tmp_path / 'out'}\nseeds: [0]\nbudget_tokens: 40\nbudget_points: [20]\n"
        "common: {model: tiny-random, task: add2, prompts_per_step: 2, group_size: 2, max_new_tokens: 6, eval_n: 2}\n"
        "methods:\n  base: {method: base}\n"
        "  fm-correctness: {method: rltf-fm, feedback: correctness}\n")
    assert main(["compare", "--config", str(f), "--set", "common.eval_n=3"]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "results.json").read_text())
    assert summary["points"] == [0, 20, 40] and summary["common"]["eval_n"] == 3
    for name in ("base", "fm-correctness"):
        cells = summary["table"][name]["points"]
        assert set(cells) == {"0", "20", "40"} and all(c["n_seeds"] == 1 for c in cells.values())
    assert all(t >= 40 for t in summary["table"]["fm-correctness"]["points"]["40"]["tokens"])
    recipe = (out / "runs" / "fm-correctness-s0" / "recipe.yaml").read_text()
    assert "feedback: correctness" in recipe and "max_generated_tokens: 40" in recipe
    assert (out / "results.md").read_text().count("|") > 10 and (out / "curves.png").stat().st_size > 1000
    wall = json.loads((out / "runs" / "fm-correctness-s0" / "wall_time.json").read_text())
    assert len(wall["sittings_s"]) == 1 and wall["total_s"] > 0
    assert set(summary["wall_min"]["add2"]) == {"base", "fm-correctness"}
    assert "Wall time per run" in (out / "results.md").read_text()
    capsys.readouterr()
    assert main(["compare", "--config", str(f), "--set", "common.eval_n=3"]) == 0
    assert capsys.readouterr().out.count("done earlier") == 2


def test_shipped_compare_recipes_load():
    from pathlib import Path

    for path in (Path(__file__).parents[1] / "recipes" / "compare").glob("*.yaml"):
        cfg = load_compare_config(path)
        assert cfg.budget_tokens > 0 and "base" in cfg.methods


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
    from rltf.eval.compare_report import OWN_ANSWERS, _feedback_use_markdown

    cells = {"m": {"100": {"wrong": 30, "fixed_critic": 1, "fixed_correctness": 8, "exact": True, "p": 0.0156,
                           "p_holm": 0.0312, "holm_exact": True},
                   "200": {"wrong": 0, "fixed_critic": 0, "fixed_correctness": 0, "exact": False, "p": 1.0}},
             "n": {"100": {"wrong": 30, "fixed_critic": 1, "fixed_correctness": 8, "exact": True, "p": 0.0156,
                           "p_holm": 0.0624, "holm_exact": True}}}  # significant alone, not after Holm
    text = _feedback_use_markdown([100, 200], cells, OWN_ANSWERS)
    assert "| m | 1 / 8 of 30 (p 0.02, Holm 0.03) *- | no wrong answers |" in text
    assert "| n | 1 / 8 of 30 (p 0.02, Holm 0.06) | n/a |" in text
    from rltf.eval.compare_report import _p

    assert (_p(0.0625), _p(0.0078), _p(0.0004), _p(1.0)) == ("0.06", "0.008", "< 0.001", "1.00")
    assert _p(0.00049, bound=True) == "5e-04"  # "p ≥ 5e-04", not "p ≥ < 0.001"
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


def test_report_only_summarises_the_finished_runs_and_says_it_is_partial(tmp_path, capsys):
    import json

    from rltf.cli import main
    from rltf.eval.compare import load_compare_config

    (tmp_path / "study.yaml").write_text(
        f"output_dir: {tmp_path / 'out'}\ntasks: [add2, fact_summary]\nseeds: [0, 1]\nbudget_tokens: 100\n"
        "baseline: grpo\nmethods:\n  grpo: {method: grpo}\n  sdpo: {method: sdpo}\n")
    assert main(["compare", "--config", str(tmp_path / "study.yaml"), "--report-only"]) == 2  # nothing finished yet
    assert "no finished runs" in capsys.readouterr().err
    cfg = load_compare_config(tmp_path / "study.yaml")
    for name, value in (("grpo", 0.25), ("sdpo", 0.5)):  # seed 0 on add2 only: 2 of 8 runs
        run_dir = cfg.run_dir("add2", name, 0)
        run_dir.mkdir(parents=True)
        evals = [{"step": 0, "tokens": 0, "eval/accuracy": 0.1}, {"step": 3, "tokens": 104, "eval/accuracy": value}]
        (run_dir / "result.json").write_text(json.dumps({"name": name, "method": name, "seed": 0, "evals": evals}))
    assert main(["compare", "--config", str(tmp_path / "study.yaml"), "--report-only"]) == 0
    text = (tmp_path / "out" / "results.md").read_text()
    assert "Partial report: 2 of 8 runs finished" in text
    assert "| sdpo | 0.100 | 0.500 |" in text and "| grpo | n/a | n/a |" not in text
    assert text.split("### fact_summary")[1].strip() == "No finished runs yet."
    assert "Difference to grpo: no paired test yet" in text  # one seed each
    assert not (tmp_path / "out" / "runs" / "fact_summary").exists()  # nothing was trained
    # a report on a subset of seeds goes elsewhere and leaves the main one alone
    run_dir = cfg.run_dir("add2", "grpo", 1)
    run_dir.mkdir(parents=True)
    evals = [{"step": 0, "tokens": 0, "eval/accuracy": 0.1}, {"step": 3, "tokens": 104, "eval/accuracy": 0.75}]
    (run_dir / "result.json").write_text(json.dumps({"name": "grpo", "method": "grpo", "seed": 1, "evals": evals}))
    assert main(["compare", "--config", str(tmp_path / "study.yaml"), "--report-only", "--set", "seeds=[1]",
                 "--report-dir", str(tmp_path / "seed1")]) == 0
    sub = (tmp_path / "seed1" / "results.md").read_text()
    assert "Partial report: 1 of 4 runs finished" in sub and "| grpo | 0.100 | 0.750 |" in sub
    assert "| sdpo | n/a | n/a |" in sub  # seed 0 of sdpo is left out
    assert (tmp_path / "out" / "results.md").read_text() == text


def test_time_left_estimates_each_unfinished_run_from_its_nearest_finished_ones(tmp_path):
    from rltf.eval.compare import time_left
    from rltf.eval.compare_report import hours, markdown

    (tmp_path / "study.yaml").write_text(
        f"output_dir: {tmp_path / 'out'}\ntasks: [add2, fact_summary]\nseeds: [0, 1]\nbudget_tokens: 100\n"
        "methods:\n  grpo: {method: grpo}\n  sdpo: {method: sdpo}\n")
    cfg = load_compare_config(tmp_path / "study.yaml")
    assert time_left(cfg) is None  # nothing finished: no pace to go by

    def finish(task, name, seed, wall):
        run_dir = cfg.run_dir(task, name, seed)
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(json.dumps({"name": name, "seed": seed, "evals": [], "wall_s": wall}))

    finish("add2", "grpo", 0, 100.0)
    finish("add2", "sdpo", 0, 300.0)
    finish("fact_summary", "grpo", 0, 500.0)
    partly = cfg.run_dir("add2", "grpo", 1)  # interrupted after 40 s
    partly.mkdir(parents=True)
    (partly / "wall_time.json").write_text(json.dumps({"sittings_s": [40.0], "total_s": 40.0}))
    # unfinished: fact_summary sdpo s0 (no run of it on fact_summary: sdpo on any task, 300), add2 grpo s1
    # (100 - 40 spent), add2 sdpo s1 (300), fact_summary grpo s1 (500), fact_summary sdpo s1 (300)
    left = time_left(cfg)
    assert left == {"seconds": 300 + 60 + 300 + 500 + 300, "runs": 5}
    assert hours(left["seconds"]) == "24 min" and hours(5400) == "1.5 h"
    text = markdown({"runs_done": 3, "runs_total": 8, "time_left": left,
                     "by_task": {"add2": {}, "fact_summary": {}}})
    assert "The other 5 need about 24 min of compute" in text
    # a report on seed 1 alone goes by seed 0's pace too (its finished runs are in the same output_dir),
    # and a run of a name that extends another (sdpo-s2) is not taken for one of it
    finish("add2", "sdpo-s2", 0, 9000.0)
    only_seed1 = load_compare_config(tmp_path / "study.yaml", {"seeds": [1]})
    assert time_left(only_seed1) == {"seconds": 60 + 300 + 500 + 300, "runs": 4}


def test_a_sitting_is_recorded_while_it_lasts_so_a_killed_one_still_counts(tmp_path):
    import subprocess
    import sys

    from rltf.eval.compare_runs import _Sitting

    sitting = _Sitting(tmp_path, every_s=0.05)
    assert sitting.wait(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)"])) == 0
    # no final tick: what a killed sitting leaves is what the ticks during the wait wrote
    wall = json.loads((tmp_path / "wall_time.json").read_text())
    assert len(wall["sittings_s"]) == 1 and 0.4 <= wall["total_s"] < 5 and wall["every_sitting"] is True
    again = _Sitting(tmp_path).tick()  # the next sitting adds to the run's total
    wall2 = json.loads((tmp_path / "wall_time.json").read_text())
    assert len(wall2["sittings_s"]) == 2 and wall2["sittings_s"][0] == wall["sittings_s"][0]
    assert again == pytest.approx(sum(wall2["sittings_s"]), abs=0.11)


def test_backfill_wall_time_fills_in_the_sittings_before_the_recorded_ones(tmp_path):
    tool = _tool("backfill_wall_time")
    log = ("rltf:   0%| | 0/100 [00:00<?, ?it/s]\rrltf:   1%| | 1/100 [00:52<1:25:00, 52s/it]\n"
           "rltf:   2%| | 2/100 [10:24<1:25:00, 52s/it]\nresumed from x/checkpoint-2 at step 2\n"
           "rltf:   2%| | 2/100 [00:00<?, ?it/s]\rrltf:   3%| | 3/100 [1:02:03<1:25:00, 52s/it]\n"
           "rltf:   2%| | 3/100 [00:00<?, ?it/s]\rrltf:   3%| | 4/100 [00:07<1:25:00, 52s/it]\n")
    assert tool.bar_sittings(log) == [624, 3723, 7]
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text(log)
    (run / "wall_time.json").write_text(json.dumps({"sittings_s": [9.5], "total_s": 9.5}))  # the last one
    (run / "result.json").write_text(json.dumps({"name": "x", "wall_s": 9.5}))
    new = tool.backfill(run)
    assert new["sittings_s"] == [624.0, 3723.0, 9.5] and new["total_s"] == 4356.5 and new["estimated_sittings"] == 2
    assert json.loads((run / "result.json").read_text())["wall_s"] == 4356.5
    assert tool.backfill(run) is None  # done once; from now on compare records every sitting
    from rltf.eval.compare_runs import _Sitting

    _Sitting(run).tick()
    assert json.loads((run / "wall_time.json").read_text())["estimated_sittings"] == 2


def _tool(name):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_revision_behaviour_classes_and_copied_feedback():
    tool = _tool("revision_behaviour_probe")
    assert tool.classify("195", "135", True) == "fixed"
    assert tool.classify("195", " 195", False) == "same_answer"
    assert tool.classify("Paris  is big", "Paris is\nbig", False) == "same_answer"
    assert tool.classify("195", None, False) == "no_answer"
    assert tool.classify(None, "12", False) == "other_wrong"
    draft, prompt = "47 + 88 = 195.\n\\boxed{195}", "What is 47 + 88?"
    critique = 'The step "47 + 88 = 195" is wrong: recompute it carefully, then redo the later steps.'
    # the quoted step is the draft's own text: repeating it copies nothing new
    assert tool.longest_new_copy("47 + 88 = 195.", critique, draft + prompt) == 0
    # writing out the critique's words does (the stretch 'recompute it carefully, then redo' is new)
    got = tool.longest_new_copy("I will recompute it carefully, then redo. \\boxed{135}", critique, draft + prompt)
    assert got == len(" recompute it carefully, then redo")
    # a stretch counts as a whole when it joins the draft's text to the critique's words
    assert tool.longest_new_copy('step "47 + 88 = 195" is', critique, draft) == len('step "47 + 88 = 195" is')
    rows = [{"kind": "critic", "class": "same_answer", "copied_chars": 25, "verbatim": True},
            {"kind": "critic", "class": "fixed", "copied_chars": 0},
            {"kind": "correctness", "class": "other_wrong", "copied_chars": 19}]
    t = tool.tally(rows)
    assert t["critic"] == {"n": 2, "fixed": 1, "same_answer": 1, "no_answer": 0, "other_wrong": 0,
                           "verbatim": 1, "copies_feedback": 1}
    assert t["correctness"]["other_wrong"] == 1 and t["correctness"]["copies_feedback"] == 0
    pairs = [{"kind": k, "problem_id": i, "class": c, "verbatim": v, "copied_chars": 0} for k, i, c, v in [
        ("critic", "a", "same_answer", True), ("correctness", "a", "fixed", False),
        ("critic", "b", "same_answer", True), ("correctness", "b", "same_answer", True),
        ("critic", "c", "fixed", False), ("correctness", "c", "other_wrong", False)]]
    assert tool.paired(pairs, lambda r: r["class"] == "fixed") == (1, 1)
    assert tool.paired(pairs, lambda r: r["verbatim"]) == (1, 0)  # b repeats with both: not discordant
    text = tool.report([{"task": "add2", "run": "runs/x/rltf-sd-s0", "tally": tool.tally(pairs), "rows": pairs}])
    assert "1 / 1   (p 1.000)" in text and "1 / 0   (p 1.000)" in text


def test_revision_behaviour_answer_of_a_boxed_task_and_a_summary():
    from rltf.tasks.base import Score

    tool = _tool("revision_behaviour_probe")
    assert tool.answer_of(Score(0.0, False, True, "wrong answer", "195"), "47 + 88 = 195.\n\\boxed{195}") == "195"
    assert tool.answer_of(Score(0.0, False, False, "no box", None), "47 + 88 = 195.") is None
    assert tool.answer_of(Score(0.5, False, True, "missing a fact", None), "Ann met Bo.") == "Ann met Bo."


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


def test_revision_behaviour_record_writes_verbatim_counts_only_when_the_fixes_match(tmp_path):
    tool = _tool("revision_behaviour_probe")
    run = tmp_path / "run"
    run.mkdir()
    last = {"step": 9, "eval/draft_wrong_first/critic": 2, "eval/draft_fix_rate/critic": 0.5,
            "eval/draft_wrong_first/correctness": 2, "eval/draft_fix_rate/correctness": 0.0}
    (run / "result.json").write_text(json.dumps({"evals": [last]}))
    rows = [{"kind": "critic", "problem_id": "a", "class": "fixed", "verbatim": False, "copied_chars": 0},
            {"kind": "critic", "problem_id": "b", "class": "same_answer", "verbatim": True, "copied_chars": 0},
            {"kind": "correctness", "problem_id": "a", "class": "other_wrong", "verbatim": False, "copied_chars": 0},
            {"kind": "correctness", "problem_id": "b", "class": "other_wrong", "verbatim": False, "copied_chars": 0}]
    probe = {"run": str(run), "tally": tool.tally(rows), "rows": rows}
    assert tool.record(probe).startswith("recorded")
    got = json.loads((run / "result.json").read_text())["evals"][-1]
    assert got["eval/draft_verbatim/critic"] == 0.5 and got["eval/draft_verbatim/correctness"] == 0.0
    assert (got["eval/draft_verbatim_only/critic"], got["eval/draft_verbatim_only/correctness"]) == (1, 0)
    assert tool.record(probe) == "already logged"
    (run / "result.json").write_text(json.dumps({"evals": [{**last, "eval/draft_fix_rate/critic": 0.0}]}))
    assert tool.record(probe).startswith("not recorded: critic fixes 1 of 2, logged 0 of 2")
    assert "eval/draft_verbatim/critic" not in json.loads((run / "result.json").read_text())["evals"][-1]


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
    from rltf.eval.compare_report import _series, metric_range

    assert metric_range("accuracy") == metric_range("fix_rate/critic") == metric_range("draft_verbatim/critic") == (0, 1)
    assert metric_range("revision_use") == metric_range("draft_revision_use") == (-1, 1)
    assert metric_range("mean_reward") is None  # not a rate: not clipped
    row = {"points": {"100": {"mean": 0.4, "ci95_half_width": 0.9, "values": [0.3, 0.5]},
                      "0": {"mean": 0.2, "ci95_half_width": float("nan"), "values": [0.2]}}}
    xs, means, lo, hi, seeds = _series(row, (0.0, 1.0))
    assert xs == [0, 100] and means == [0.2, 0.4]  # in token order
    assert lo == [0.2, 0.0] and hi == [0.2, 1.0]  # 0.4 - 0.9 and 0.4 + 0.9 clipped; no interval: no band
    assert seeds == [(0, 0.2), (100, 0.3), (100, 0.5)]
    assert _series(row, None)[2] == [0.2, pytest.approx(-0.5)]


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


def test_study_archive_rebuilds_single_seed_runs_from_the_report_and_round_trips(tmp_path, monkeypatch):
    """A run kept only in a one-seed report comes back as a result.json that reproduces the report's
    tables and paired counts; save/restore copy finished runs between runs/ and the archive."""
    from rltf.eval.compare import CompareConfig, finished_runs, summarize

    tool = _tool("study_archive")
    monkeypatch.setattr(tool, "ARCHIVE", tmp_path / "archive")
    cfg = CompareConfig(output_dir=str(tmp_path / "out"), methods={"base": {"method": "base"},
                                                                   "rltf-sd": {"method": "rltf-sd"}},
                        seeds=[0, 1], budget_tokens=100, budget_points=[50], tasks=["add2"],
                        metrics=["revision_use", "fix_rate/critic"])

    def ev(tokens, acc, fixed_c, fixed_k, only=True):
        e = {"step": tokens // 10, "tokens": tokens, "eval/accuracy": acc, "eval/loss": 1.0,  # loss: not reported
             "eval/wrong_first/critic": 8, "eval/wrong_first/correctness": 8,
             "eval/fix_rate/critic": fixed_c / 8, "eval/fix_rate/correctness": fixed_k / 8,
             "eval/revision_use": (fixed_c - fixed_k) / 8,
             "eval/draft_wrong_first/critic": 5, "eval/draft_wrong_first/correctness": 5,
             "eval/draft_fix_rate/critic": 0.2, "eval/draft_fix_rate/correctness": 0.4,
             "eval/draft_verbatim/critic": 0.6, "eval/draft_verbatim/correctness": 0.0,
             "eval/draft_verbatim_only/critic": 3, "eval/draft_verbatim_only/correctness": 0}
        if only:
            e.update({"eval/fixed_only/critic": fixed_c, "eval/fixed_only/correctness": fixed_k})
        return e

    originals = [
        {"task": "add2", "name": "base", "method": "base", "seed": 0, "evals": [ev(0, 0.5, 0, 0)], "wall_s": 60.0},
        # 30 tokens stands for no point, 55 for 50, 104 for 100; counts without discordant pairs at 104
        {"task": "add2", "name": "rltf-sd", "method": "rltf-sd", "seed": 0, "wall_s": 1234.5,
         "evals": [ev(0, 0.5, 0, 0), ev(30, 0.55, 1, 0), ev(55, 0.625, 2, 0), ev(104, 0.75, 2, 1, only=False)]}]
    summary = summarize(cfg, originals)
    rebuilt = [tool.results_from_report(summary, "add2", name, 0) for name in ("base", "rltf-sd")]
    assert tool.results_from_report(summary, "add2", "rltf-sd", 1) is None  # seed 1 never ran
    sd = rebuilt[1]
    assert [e["tokens"] for e in sd["evals"]] == [0, 55, 104] and sd["wall_s"] == 1234.5
    assert sd["restored_from"] and "eval/loss" not in sd["evals"][0]
    assert sd["evals"][1]["eval/fixed_only/critic"] == 2 and "eval/fixed_only/critic" not in sd["evals"][2]
    again = summarize(cfg, rebuilt)
    for key in ("by_task", "feedback_use", "draft_feedback_use", "draft_verbatim", "wall_min"):
        assert json.dumps(again[key], sort_keys=True) == json.dumps(summary[key], sort_keys=True), key
    assert again["draft_verbatim"]["add2"]["rltf-sd"]["100"]["only_critic"] == 3
    # the archive: from-report, then restore into an empty output_dir, and save of a newly finished run
    assert tool.from_report(cfg, summary) == 2 and tool.from_report(cfg, summary) == 0  # kept runs are not redone
    assert tool.restore(cfg) == 2 and tool.restore(cfg) == 0
    assert [(r["name"], r["seed"]) for r in finished_runs(cfg)] == [("base", 0), ("rltf-sd", 0)]
    run = cfg.run_dir("add2", "rltf-sd", 1)
    run.mkdir(parents=True)
    (run / "checkpoint-4").mkdir()  # not kept
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    assert tool.save(cfg) == 0  # not finished: nothing to keep yet
    (run / "result.json").write_text(json.dumps({**originals[1], "seed": 1}))
    assert tool.save(cfg) == 1 and tool.save(cfg) == 0
    kept = tmp_path / "archive" / "add2" / "rltf-sd-s1"
    assert sorted(p.name for p in kept.iterdir()) == ["metrics.jsonl", "result.json"]
    # a pooled report cannot be split into runs
    pooled = summarize(cfg, [*originals, {**originals[1], "seed": 1}])
    with pytest.raises(ValueError, match="pools several seeds"):
        tool.results_from_report(pooled, "add2", "rltf-sd", 0)


def _study_with_finished_runs(tmp_path, walls, seeds="[0, 1, 2]", tasks=""):
    (tmp_path / "study.yaml").write_text(
        f"output_dir: {tmp_path / 'out'}\n{tasks}seeds: {seeds}\nbudget_tokens: 100\n"
        "methods:\n  grpo: {method: grpo}\n  sdpo: {method: sdpo}\n  sdpo-hybrid: {method: sdpo}\n")
    cfg = load_compare_config(tmp_path / "study.yaml")
    for (task, name, seed), wall in walls.items():
        run_dir = cfg.run_dir(task, name, seed)
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(json.dumps({"name": name, "method": "grpo", "seed": seed,
                                                         "evals": [], "wall_s": wall}))
    return cfg


def test_only_selects_runs_by_name_seed_or_task_and_refuses_a_pattern_that_matches_none(tmp_path):
    from rltf.eval.compare import select_runs

    cfg = _study_with_finished_runs(tmp_path, {}, seeds="[0, 1]", tasks="tasks: [add2, fact_summary]\n")
    assert len(select_runs(cfg, None)) == 12
    assert select_runs(cfg, ["sdpo"]) == {(s, t, "sdpo") for s in (0, 1) for t in ("add2", "fact_summary")}
    assert len(select_runs(cfg, ["sdpo*"])) == 8  # sdpo and sdpo-hybrid
    assert select_runs(cfg, ["fact_summary/*-s1"]) == {(1, "fact_summary", n) for n in ("grpo", "sdpo", "sdpo-hybrid")}
    assert select_runs(cfg, ["grpo-s0", "add2/sdpo-hybrid-s1"]) == {
        (0, "add2", "grpo"), (0, "fact_summary", "grpo"), (1, "add2", "sdpo-hybrid")}
    with pytest.raises(ConfigError, match=r"'sdpo-s' matches no run .*named like add2/grpo-s0"):
        select_runs(cfg, ["grpo", "sdpo-s"])


def test_a_sitting_trains_only_the_selected_runs_that_fit_its_time_limit(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from rltf.eval import compare, compare_runs

    cfg = _study_with_finished_runs(tmp_path, {("add2", "grpo", 0): 100.0, ("add2", "sdpo", 0): 5000.0,
                                               ("add2", "sdpo-hybrid", 0): 200.0})
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(compare_runs, "time", SimpleNamespace(monotonic=lambda: clock.now))
    trained = []

    def fake_train(method, values, run_dir, sitting, label):
        trained.append(run_dir.name)
        clock.now += 600.0  # each run takes 10 minutes of the sitting
        return [{"step": 1, "tokens": 100, "eval/accuracy": 0.5}]

    monkeypatch.setattr(compare_runs, "_train", fake_train)
    lines = []
    results = compare.run_all(cfg, lines.append, only=["*-s1"], time_limit_s=1000.0)
    # seed 1 in order: grpo (needs 100 s of 1000) runs and takes 600; sdpo (5000) does not fit the 400
    # left; sdpo-hybrid (200) does; seed 2 is not selected
    assert trained == ["grpo-s1", "sdpo-hybrid-s1"]
    assert "sdpo seed 1: not started: needs about 1.4 h, 7 min of the time limit left" in lines
    assert not any("seed 2" in line for line in lines)
    assert [(r["name"], r["seed"]) for r in results] == [("grpo", 0), ("sdpo", 0), ("sdpo-hybrid", 0),
                                                         ("grpo", 1), ("sdpo-hybrid", 1)]
    done = json.loads((cfg.run_dir("add2", "grpo", 1) / "result.json").read_text())
    assert done["wall_s"] == 600.0 and done["evals"][0]["eval/accuracy"] == 0.5
    assert not cfg.run_dir("add2", "sdpo", 1).exists()  # a run that did not start leaves nothing behind
    # without a limit the selected run that did not fit trains; the finished ones are not repeated
    trained.clear()
    compare.run_all(cfg, lines.append, only=["sdpo"])
    assert trained == ["sdpo-s1", "sdpo-s2"]


def test_rltf_compare_only_and_time_limit_flags(tmp_path, capsys, monkeypatch):
    import argparse

    from rltf.cli import main
    from rltf.cli.common import duration
    from rltf.eval import compare_runs

    def no_training(*args, **kwargs):
        raise AssertionError("this test trains nothing")

    monkeypatch.setattr(compare_runs, "_train", no_training)

    assert duration("90s") == 90.0 and duration("45m") == 2700.0 and duration("1.5h") == 5400.0
    for bad in ("90", "h", "-1h", "nanm", "infh", "2d"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
    cfg = _study_with_finished_runs(tmp_path, {("add2", "grpo", 0): 100.0})
    config = str(tmp_path / "study.yaml")
    assert main(["compare", "--config", config, "--only", "grpo,sdpo-x"]) == 2
    assert "'sdpo-x' matches no run" in capsys.readouterr().err
    assert main(["compare", "--config", config, "--report-only", "--only", "grpo"]) == 2
    assert "--report-only trains none" in capsys.readouterr().err
    # nothing fits 1 s at grpo's pace of 100 s: the sitting trains nothing and reports the finished run
    assert main(["compare", "--config", config, "--time-limit", "1s"]) == 0
    out = capsys.readouterr().out
    assert out.count("not started") == 8 and "grpo seed 0: done earlier" in out
    assert not cfg.run_dir("add2", "grpo", 1).exists()
