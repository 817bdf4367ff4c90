"""The feedback-use study's tools (studies/feedback-use/): the revision-behaviour probe and the run archive."""
import json

import pytest


def _tool(name, study="feedback-use"):
    import importlib.util
    from pathlib import Path

    study = Path(__file__).parents[1] / "studies" / study
    path = study / f"{name}.py" if (study / f"{name}.py").exists() else study / "probes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
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


def test_study_archive_rebuilds_single_seed_runs_from_the_report_and_round_trips(tmp_path, monkeypatch):
    """A run kept only in a one-seed report comes back as a result.json that reproduces the report's
    tables and paired counts; save/restore copy finished runs between runs/ and the archive."""
    from rltf.eval.compare import CompareConfig, finished_runs, summarize

    tool = _tool("archive")
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
    (run / "eval_outcomes.jsonl").write_text('{"step": 1, "drafts": {}}\n')  # item-level outcomes are kept
    assert tool.save(cfg) == 0  # not finished: nothing to keep yet
    (run / "result.json").write_text(json.dumps({**originals[1], "seed": 1}))
    assert tool.save(cfg) == 1 and tool.save(cfg) == 0
    kept = tmp_path / "archive" / "add2" / "rltf-sd-s1"
    assert sorted(p.name for p in kept.iterdir()) == ["eval_outcomes.jsonl", "metrics.jsonl", "result.json"]
    # a pooled report cannot be split into runs
    pooled = summarize(cfg, [*originals, {**originals[1], "seed": 1}])
    with pytest.raises(ValueError, match="pools several seeds"):
        tool.results_from_report(pooled, "add2", "rltf-sd", 0)


def test_the_decisive_study_files_load_and_every_run_makes_a_valid_config():
    """studies/decisive/{warm,base}/study.yaml: each run's config (with its seed's and task's starting
    model) is one the method accepts; the arms differ only in the starting model and output_dir."""
    from pathlib import Path

    from rltf.eval.compare import load_compare_config, run_config
    from rltf.methods import make_config

    root = Path(__file__).parents[1] / "studies" / "decisive"
    arms = {arm: load_compare_config(root / arm / "study.yaml") for arm in ("warm", "base")}
    assert arms["warm"].methods == arms["base"].methods and arms["warm"].seeds == [0, 1, 2]
    assert arms["warm"].budget_tokens >= 24000 and arms["warm"].common["eval_n"] >= 400
    for arm, cfg in arms.items():
        for task in cfg.task_names:
            for name in cfg.methods:
                method, values = run_config(cfg, name, 2, cfg.run_dir(task, name, 2), task=task)
                config = make_config("grpo" if method == "base" else method, overrides=values)
                expected = f"runs/study-decisive/warm-start/{task}-s2" if arm == "warm" else "smollm2-135m"
                assert config.model == expected and config.task == task and config.eval_feedback_at == "last"


def test_every_study_archive_of_runs_can_be_committed():
    """A study's finished runs survive a machine change only if git keeps them: `runs/` is ignored, and
    the archive's runs/ folder must be re-included at every depth a study keeps one
    (`!studies/**/archive/runs/`; the decisive study's arms are one level deeper than the other
    studies: their first sitting's run was lost so)."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    kept = ["studies/feedback-use/archive/runs/add2/grpo-s0/result.json",
            "studies/warm-start/archive/runs/constraints-critic/metrics.jsonl",
            "studies/decisive/warm/archive/runs/constraints/grpo-s0/eval_outcomes.jsonl",
            "studies/decisive/base/archive/runs/add2/rltf-fm-s2/result.json"]
    for path in kept:
        got = subprocess.run(["git", "check-ignore", "-q", path], cwd=root)
        assert got.returncode == 1, f"{path} is git-ignored: the archive would not be committed"
    # and what the archive is not meant to keep stays ignored
    assert subprocess.run(["git", "check-ignore", "-q", "runs/study-decisive/warm/runs/x/result.json"],
                          cwd=root).returncode == 0


def test_every_warm_start_run_makes_a_valid_config():
    """studies/warm-start/run.sh: each named run's flags (its shell variables expanded) parse as
    ``rltf train revision-sft`` would parse them, and give the config its name says (task, feedback,
    targets, seed, held-out size): a typo in a queue's entry fails here, not an hour into a sitting."""
    import re
    import shlex
    from pathlib import Path

    from rltf.cli import build_parser
    from rltf.cli.train_cmd import overrides_of
    from rltf.methods import make_config

    root = Path(__file__).parents[1]
    text = (root / "studies" / "warm-start" / "run.sh").read_text()
    variables = dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines()
                     if re.match(r"^[A-Z0-9_]+=", line))
    assert variables["ADD2_EVAL"] == "--set eval_n=400 --set eval_every=0" and "constraints?kinds=" in variables["COUNTING"]
    runs = dict(re.findall(r'^\s+\[([\w-]+)\]="(.*)"$', text, re.M))
    assert len(runs) >= 19 and {"add2-worked-s1", "add2-worked-control", "constraints-control-s2"} <= set(runs)
    parser = build_parser("train")
    for name, flags in runs.items():
        flags = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], flags)  # an undefined one: KeyError
        argv = ["train", "revision-sft", *shlex.split(flags), "--output-dir", f"runs/warm-start/{name}"]
        args = parser.parse_args(argv)
        config = make_config("revision-sft", str(root / args.config), overrides_of(args))
        seed = re.search(r"-s(\d)$", name)
        assert config.seed == (int(seed.group(1)) if seed else 0), name
        assert config.task.startswith("add2" if name.startswith("add2") else "constraints"), name
        assert config.feedback == ("correctness" if "control" in name else "critic"), name
        assert config.targets == ("worked_solution" if "worked" in name else "minimal_edit"), name
        assert config.use_lora == ("lora" in name), name
        assert config.output_dir == f"runs/warm-start/{name}"
        if name.startswith("add2-") and name not in ("add2-critic", "add2-control"):
            assert config.eval_n == 400 and config.eval_every == 0, name


def test_verify_rerun_accepts_the_same_run_and_names_the_first_steps_that_differ(tmp_path):
    """studies/warm-start/verify_rerun.py: a warm start trained again on a new machine is compared with
    its archive step by step; counts must match exactly, losses within rtol, timings are ignored."""
    tool = _tool("verify_rerun", "warm-start")
    rows = [{"step": 0, "eval/accuracy": 0.225, "eval/wrong_first/critic": 155.0},
            {"step": 1, "tokens/generated": 3100, "accuracy/turn0": 0.25, "loss/sft": 0.5, "grad_norm": 2.0,
             "time/step": 40.0},
            {"step": 2, "tokens/generated": 2900, "accuracy/turn0": 0.5, "loss/sft": 0.25, "grad_norm": 1.0,
             "time/step": 41.0}]
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
    (old / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    same = [dict(r) for r in rows]
    same[1]["time/step"], same[2]["loss/sft"] = 99.0, 0.25 * (1 + 1e-6)  # timing ignored; loss within rtol
    (new / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in same[:2]) + "\n")  # in progress
    compared, diffs = tool.compare(tool.read(new), tool.read(old), rtol=1e-4)
    assert (compared, diffs) == (6, [])
    (new / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in same) + "\n")
    assert tool.compare(tool.read(new), tool.read(old), rtol=1e-4) == (10, [])
    changed = [dict(r) for r in rows]
    changed[2]["tokens/generated"], changed[0]["eval/accuracy"], changed[1]["loss/sft"] = 2901, 0.23, 0.51
    compared, diffs = tool.compare(tool.read(tmp_path / "old"), _write(tmp_path / "bad", changed, tool), rtol=1e-4)
    assert compared == 10 and diffs == ["step 0 eval/accuracy: now 0.225, archived 0.23",
                                        "step 1 loss/sft: now 0.5, archived 0.51",
                                        "step 2 tokens/generated: now 2900, archived 2901"]
    # item-level outcomes, by step, over the fields both record (the newer run records "first" too)
    outcome = {"step": 45, "own": {"critic": {"fixed": ["i1", "i2"]}}}
    (old / "eval_outcomes.jsonl").write_text(json.dumps({"step": 0, "own": {}}) + "\n" + json.dumps(outcome) + "\n")
    (new / "eval_outcomes.jsonl").write_text("\n".join(json.dumps({**r, "first": ["i9"]}) for r in
                                                       ({"step": 0, "own": {}}, {"step": 15, "own": {"x": 1}}, outcome)))
    assert tool.compare_outcomes(new, old) == (2, [])
    other = {"step": 45, "own": {"critic": {"fixed": ["i1"]}}}
    (new / "eval_outcomes.jsonl").write_text(json.dumps(other) + "\n")
    assert tool.compare_outcomes(new, old) == (1, ["step 45 eval_outcomes: own differs"])


def _write(run, rows, tool):
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return tool.read(run)


def test_discordant_revision_probe_classifies_how_a_revision_changed_the_boxed_sum():
    """studies/warm-start/probes/discordant_revisions.py: the measured finding of RESULTS ("add2: LoRA,
    the confirmation") rests on this classifier: the named digit changed to its right value, to a wrong
    one, other digits changed too, or the sum handed back."""
    pytest.importorskip("yaml")
    probe = _tool("discordant_revisions", "warm-start")
    tens = "Your answer is incorrect: its tens digit is wrong; the other digits are right."
    assert probe.digit_change(r"\boxed{90}", r"\boxed{50}", tens, 60) == "named digit, wrong"
    assert probe.digit_change(r"\boxed{90}", r"so \boxed{60}", tens, 60) == "named digit, right"
    assert probe.digit_change(r"\boxed{58}", r"\boxed{46}", tens, 48) == "other digits"
    assert probe.digit_change(r"\boxed{58}", r"\boxed{58}", tens, 48) == "same"
    assert probe.digit_change(r"\boxed{58}", "I do not know", tens, 48) == "unreadable"
    assert probe.digit_change(r"\boxed{58}", r"\boxed{48}", "Your answer was incorrect.", 48) == "no digit named"
    hundreds = "its hundreds digit is wrong"  # 99 -> 199: the new leading digit is the hundreds place
    assert probe.digit_change(r"\boxed{99}", r"\boxed{199}", hundreds, 109) == "named digit, wrong"
    assert probe.digit_change(r"\boxed{9}", r"\boxed{109}", hundreds, 109) == "named digit, right"


def test_decisive_warm_starts_link_a_rerun_only_if_it_is_the_run_its_seeds_study_runs_started_from(tmp_path):
    """studies/decisive/warm_starts.py: a warm start trained again is linked when it equals its reference;
    a differing one stops the arm unless named in --allow and no run of its seed exists, and then it
    becomes the reference the next machine's rerun is checked against."""
    tool = _tool("warm_starts", "decisive")
    rows = [{"step": 0, "eval/accuracy": 0.5}, {"step": 1, "tokens/generated": 100, "loss/sft": 0.5},
            {"step": 2, "tokens/generated": 90, "loss/sft": 0.4}, {"step": 2, "eval/accuracy": 0.6}]
    other = [*rows[:2], {"step": 2, "tokens/generated": 91, "loss/sft": 0.4}, rows[3]]

    def write(path, metrics):
        path.mkdir(parents=True, exist_ok=True)
        (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in metrics) + "\n")

    name, key = "constraints-critic-s1", "constraints-s1"
    write(tmp_path / "studies/warm-start/archive/runs" / name, rows)
    model = tmp_path / "runs/warm-start" / name / "checkpoint-45/model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    link = tmp_path / "runs/study-decisive/warm-start" / key
    said = []

    write(tmp_path / "runs/warm-start" / name, rows)  # the same run: linked
    assert tool.link_all(set(), tmp_path, said.append) == 0
    assert link.is_symlink() and link.resolve() == model.resolve()
    assert any("missing" in s and "constraints-critic-s2" in s for s in said)  # the others are not trained

    write(tmp_path / "runs/warm-start" / name, other)  # one sampled token count differs at step 2
    said.clear()
    assert tool.link_all(set(), tmp_path, said.append, keys={"constraints-s0"}) == 0  # not this seed's runs
    assert link.is_symlink()  # untouched by a call that does not check it
    assert tool.link_all(set(), tmp_path, said.append) == 3 and not link.exists()  # its old link removed
    assert any("step 2 tokens/generated: now 91, archived 90" in s for s in said)
    assert any(f"--allow {name}" in s for s in said)
    assert tool.link_all({"constraints-critic-s2"}, tmp_path, said.append) == 3  # another name allows nothing

    half_done = tmp_path / "runs/study-decisive/warm/runs/constraints/grpo-s1/checkpoint-4"
    half_done.mkdir(parents=True)  # a run of seed 1 started from the archived weights
    said.clear()
    assert tool.link_all({name}, tmp_path, said.append) == 3 and not link.exists()
    assert any("refused" in s and "grpo-s1" in s for s in said)
    assert not (tmp_path / "studies/decisive/warm/warm-starts" / name).exists()

    (half_done / "x").write_text("")
    half_done.rename(tmp_path / "runs/study-decisive/warm/runs/constraints/grpo-s0")  # seed 0's run: no bar
    write(tmp_path / "runs/warm-start" / name, other[:2])  # not finished (its steps so far agree): not linked
    said.clear()
    assert tool.link_all({name}, tmp_path, said.append) == 0 and not link.exists()
    assert any("not finished" in s and name in s for s in said)

    write(tmp_path / "runs/warm-start" / name, other)
    assert tool.link_all({name}, tmp_path, said.append) == 0 and link.is_symlink()
    recorded = tmp_path / "studies/decisive/warm/warm-starts" / name / "metrics.jsonl"
    assert recorded.read_text() == (tmp_path / "runs/warm-start" / name / "metrics.jsonl").read_text()
    assert tool.reference(name, tmp_path) == recorded.parent
    # the next machine: the rerun is checked against the recorded run, not the warm-start archive
    link.unlink()
    assert tool.link_all(set(), tmp_path, said.append) == 0 and link.is_symlink()
    write(tmp_path / "runs/warm-start" / name, rows)  # the archived run's twin now differs from the reference
    assert tool.link_all(set(), tmp_path, said.append) == 3


def test_decisive_warm_starts_checks_the_warm_starts_of_the_runs_only_selects(monkeypatch, capsys):
    pytest.importorskip("yaml")
    tool = _tool("warm_starts", "decisive")
    assert tool.needed(["constraints/*-s1"]) == {"constraints-s1"}
    assert tool.needed(["grpo-s2", "add2/base-s0"]) == {"constraints-s2", "add2-s2", "add2-s0"}
    assert tool.needed([]) == set(tool.WARM)
    # a misspelt pattern: rltf compare's message and exit 2 (argparse's), not a traceback, before anything is linked
    monkeypatch.setattr(tool.sys, "argv", ["warm_starts.py", "--only", "constraints/nosuch-s1"])
    monkeypatch.setattr(tool, "link_all", lambda *a, **k: pytest.fail("linked after a bad --only"))
    with pytest.raises(SystemExit) as stop:
        tool.main()
    assert stop.value.code == 2
    assert "matches no run of this study" in capsys.readouterr().err


def test_decisive_exploratory_table_pools_seeds_and_tests_each_pair_item_by_item():
    """studies/decisive/exploratory.py: a - b per pair at the full budget, pooled over the seeds both
    runs have and seed by seed, exact two-sided McNemar on the discordant items (hand-computed)."""
    tool = _tool("exploratory", "decisive")
    items = [f"i{k}" for k in range(6)]
    outcomes = {  # per seed: the items' 0/1 outcome; seed 2 of rltf-sd not finished
        "rltf-sd": [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], None],
        "multiturn-grpo": [[0, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]],
    }

    def evaluations(name, point):
        assert point == 24000
        return [None if o is None else {i: {"correct": float(v)} for i, v in zip(items, o)}
                for o in outcomes.get(name, [None, None, None])]

    rows = tool.table(evaluations, [0, 1, 2], 24000, "correct")
    assert rows[0] == "| a - b | pooled | seed 0 | seed 1 | seed 2 |"
    row = next(r for r in rows if r.startswith("| rltf-sd - multiturn-grpo |"))
    # seed 0: a only on i0-i2 (3), b only on i5 (1): +2/6, p = 2 * (1 + 4) / 16 = 0.625
    # seed 1: a only on i0, i1 (2), b only none: +2/6, p = 2 * 1 / 4 = 0.5
    # pooled: 5 vs 1 over 12 pairs: +4/12, p = 2 * (1 + 6) / 64 = 0.21875
    assert row == ("| rltf-sd - multiturn-grpo | +0.333 (5 / 1, p 0.22) | +0.333 (3 / 1, p 0.62) | "
                   "+0.333 (2 / 0, p 0.5) | n/a |")
    assert next(r for r in rows if r.startswith("| rltf-fm - multiturn-grpo |")).endswith("| n/a | n/a | n/a | n/a |")
    assert len(rows) == 2 + len(tool.PAIRS)


def test_decisive_report_puts_the_archived_runs_back_before_it_reports_each_arm(tmp_path):
    """studies/decisive/report.sh on a machine whose runs/ lacks the archived runs (a replaced machine,
    before run.sh has restored them) must put them back before `rltf compare` reads runs/: without that
    it reported "no finished runs" for the warm arm and rewrote exploratory.md with n/a in every cell
    (2026-12-05). The tools are stand-ins that log their arguments (restore itself is tested above)."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).parents[1]
    tree = tmp_path / "studies" / "decisive"
    tree.mkdir(parents=True)
    shutil.copyfile(repo / "studies" / "decisive" / "report.sh", tree / "report.sh")
    calls = tmp_path / "calls.log"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    for exe, rc in (("python", 0), ("rltf", 1)):  # rltf compare exits 1: no finished runs in runs/
        stub = tmp_path / ".venv" / "bin" / exe
        stub.write_text(f'#!/bin/sh\necho "{exe} $* archive=$STUDY_ARCHIVE" >> {calls}\nexit {rc}\n')
        stub.chmod(0o755)
    got = subprocess.run(["bash", str(tree / "report.sh")], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert calls.read_text().splitlines() == [
        "python studies/feedback-use/archive.py restore studies/decisive/warm/study.yaml archive=studies/decisive/warm/archive",
        "rltf compare --config studies/decisive/warm/study.yaml --report-only archive=",
        "python studies/feedback-use/archive.py restore studies/decisive/base/study.yaml archive=studies/decisive/base/archive",
        "rltf compare --config studies/decisive/base/study.yaml --report-only archive=",
        "python studies/decisive/warm_vs_base.py archive=",
        "python studies/decisive/exploratory.py archive="]
