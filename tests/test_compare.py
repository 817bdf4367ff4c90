"""rltf compare: runs at equal token budgets, table and curves, resumable; budget-point logic by hand."""
import json

import pytest

from rltf.errors import ConfigError
from rltf.eval.compare import at_points, interval, load_compare_config


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


def test_rltf_compare_end_to_end_and_resume(tmp_path, capsys):
    from rltf.cli import main

    f = tmp_path / "compare.yaml"
    f.write_text(
        f"output_dir: {tmp_path / 'out'}\nseeds: [0]\nbudget_tokens: 40\nbudget_points: [20]\n"
        "common: {model: tiny-random, task: add2, prompts_per_step: 2, group_size: 2, max_new_tokens: 6, eval_n: 2}\n"
        "methods:\n  base: {method: base}\n  grpo: {method: grpo}\n"
        "  fm-correctness: {method: rltf-fm, feedback: correctness}\n")
    assert main(["compare", "--config", str(f), "--set", "common.eval_n=3"]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "results.json").read_text())
    assert summary["points"] == [0, 20, 40] and summary["common"]["eval_n"] == 3
    for name in ("base", "grpo", "fm-correctness"):
        cells = summary["table"][name]["points"]
        assert set(cells) == {"0", "20", "40"} and all(c["n_seeds"] == 1 for c in cells.values())
    assert all(t >= 40 for t in summary["table"]["grpo"]["points"]["40"]["tokens"])
    recipe = (out / "runs" / "fm-correctness-s0" / "recipe.yaml").read_text()
    assert "feedback: correctness" in recipe and "max_generated_tokens: 40" in recipe
    assert (out / "results.md").read_text().count("|") > 10 and (out / "curves.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["compare", "--config", str(f), "--set", "common.eval_n=3"]) == 0
    assert capsys.readouterr().out.count("done earlier") == 3


def test_shipped_compare_recipes_load():
    from pathlib import Path

    for path in (Path(__file__).parents[1] / "recipes" / "compare").glob("*.yaml"):
        cfg = load_compare_config(path)
        assert cfg.budget_tokens > 0 and "base" in cfg.methods
