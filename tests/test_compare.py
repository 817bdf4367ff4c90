"""rltf compare: the study file, runs at equal token budgets, resumable sittings, --only and --time-limit."""
import json

import pytest

from rltf.errors import ConfigError
from rltf.eval.compare import load_compare_config


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

    from rltf.eval.compare_runs import Sitting

    sitting = Sitting(tmp_path, every_s=0.05)
    assert sitting.wait(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)"])) == 0
    # no final tick: what a killed sitting leaves is what the ticks during the wait wrote
    wall = json.loads((tmp_path / "wall_time.json").read_text())
    assert len(wall["sittings_s"]) == 1 and 0.4 <= wall["total_s"] < 5 and wall["every_sitting"] is True
    again = Sitting(tmp_path).tick()  # the next sitting adds to the run's total
    wall2 = json.loads((tmp_path / "wall_time.json").read_text())
    assert len(wall2["sittings_s"]) == 2 and wall2["sittings_s"][0] == wall["sittings_s"][0]
    assert again == pytest.approx(sum(wall2["sittings_s"]), abs=0.11)


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


def test_keep_checkpoints_prunes_a_finished_runs_checkpoints(tmp_path):
    """keep_checkpoints: a finished run keeps all its checkpoints, the last one's weights without the
    optimizer state (model), or none; run_all prunes runs that finished in an earlier sitting too, and
    an unknown value is a one-line error."""
    import json

    import pytest
    import yaml

    from rltf.errors import ConfigError
    from rltf.eval.compare import load_compare_config
    from rltf.eval.compare_runs import prune_checkpoints, run_all

    def fake_run(root):
        for step in (4, 8):
            (root / f"checkpoint-{step}" / "model").mkdir(parents=True)
            (root / f"checkpoint-{step}" / "model" / "config.json").write_text("{}")
            (root / f"checkpoint-{step}" / "trainer_state.pt").write_bytes(b"x" * 10)
        return root

    run = fake_run(tmp_path / "a")
    prune_checkpoints(run, "all")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-4", "checkpoint-8"]
    prune_checkpoints(run, "model")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-8"]
    assert (run / "checkpoint-8" / "model" / "config.json").exists()
    assert not (run / "checkpoint-8" / "trainer_state.pt").exists()
    prune_checkpoints(run, "model")  # again: the last one (now without a trainer state) stays
    assert (run / "checkpoint-8" / "model" / "config.json").exists()
    prune_checkpoints(run, "none")
    assert list(run.iterdir()) == []

    study = {"output_dir": str(tmp_path / "study"), "seeds": [0], "keep_checkpoints": "none",
             "common": {"task": "add2"}, "methods": {"grpo": {"method": "grpo"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    cfg = load_compare_config(path)
    finished = fake_run(cfg.run_dir("add2", "grpo", 0))
    (finished / "result.json").write_text(json.dumps({"name": "grpo", "method": "grpo", "seed": 0, "evals": []}))
    assert [r["name"] for r in run_all(cfg, console=lambda _: None)] == ["grpo"]
    assert not list(finished.glob("checkpoint-*")) and (finished / "result.json").exists()

    path.write_text(yaml.safe_dump({**study, "keep_checkpoints": "some"}))
    with pytest.raises(ConfigError, match="keep_checkpoints must be one of all, model, none"):
        load_compare_config(path)
