"""Item-level paired tests between runs (rltf.eval.item_tests): hand-computed discordant items and
p-values, pooling over seeds, Holm over methods, the compare report's wiring from eval_outcomes.jsonl,
and the {seed}/{task} placeholders that give each seed its own starting model."""
import json
import math

import pytest

from rltf.eval.item_tests import item_difference, item_tests, load_outcomes, paired_values


def items(correct: dict[str, bool], loose: dict[str, float] | None = None):
    return {i: {"correct": c, "reward": float(c), **({"instruction_loose": loose[i]} if loose else {})}
            for i, c in correct.items()}


def test_item_difference_by_hand():
    # 0/1: 3 items right only in a, 1 only in b -> exact McNemar p = 2 * P(X >= 3 | n 4) = 2 * 5/16
    pairs = [(1, 0), (1, 0), (1, 0), (0, 1), (1, 1), (0, 0)]
    cell = item_difference(pairs)
    assert cell["test"] == "mcnemar" and (cell["only_a"], cell["only_b"], cell["n"]) == (3, 1, 6)
    assert cell["p"] == pytest.approx(10 / 16) and cell["mean_diff"] == pytest.approx(2 / 6)
    assert (cell["mean_a"], cell["mean_b"]) == (pytest.approx(4 / 6), pytest.approx(2 / 6))
    # graded: paired t over items. d = (0.5, 0.5, 0.0, 0.2): mean 0.3, sd 0.2449, t = 0.3 / (0.2449 / 2) = 2.449, 3 df
    graded = item_difference([(1.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.6, 0.4)])
    sd = math.sqrt(((0.2) ** 2 * 2 + 0.3 ** 2 + 0.1 ** 2) / 3)
    assert graded["test"] == "paired-t" and graded["mean_diff"] == pytest.approx(0.3)
    assert sd == pytest.approx(0.2449, abs=1e-4)
    assert graded["p"] == pytest.approx(0.0917, abs=1e-3)  # two-sided t(3) at 2.449
    assert item_difference([]) is None


def test_paired_values_refuse_different_items_and_unknown_metrics():
    a, b = items({"x": True, "y": False}), items({"x": False, "z": True})
    with pytest.raises(ValueError, match="different items"):
        paired_values(a, b, "correct")
    with pytest.raises(ValueError, match="'strict' not recorded; recorded: correct, reward"):
        paired_values(a, a, "strict")
    assert paired_values(a, items({"y": True, "x": True}), "correct") == [(1.0, 1.0), (0.0, 1.0)]  # id order


def test_item_tests_pool_seeds_and_holm_over_methods():
    ids = [f"t/{i}" for i in range(10)]
    base = {0: items({i: k < 4 for k, i in enumerate(ids)}), 1: items({i: k < 5 for k, i in enumerate(ids)})}
    # "good": seed 0 right on 0-8 (5 more), seed 1 right on 0-9 (5 more): 10 vs 0 pooled -> p = 2 / 2**10
    good = {0: items({i: k < 9 for k, i in enumerate(ids)}), 1: items({i: True for i in ids})}
    # "same": seed 0 swaps one item each way; seed 1 only finished at the first point
    same = {0: items({i: (k < 3 or k == 5) for k, i in enumerate(ids)}), 1: None}
    runs = {"grpo": base, "good": good, "same": same}

    def evaluations(name, point):
        return [runs[name][s] if point == 100 or name != "same" else None for s in (0, 1)]

    out = item_tests([("good", "grpo"), ("same", "grpo")], [100, 200], ["accuracy", "revision_use"], evaluations)
    assert set(out) == {"accuracy"}  # revision_use is not an item metric: no table, no error
    g, s = out["accuracy"]["good"]["100"], out["accuracy"]["same"]["100"]
    assert (g["only_a"], g["only_b"], g["n"], g["seeds"]) == (10, 0, 20, 2)
    assert g["p"] == pytest.approx(2 / 2 ** 10)
    assert (s["only_a"], s["only_b"], s["n"], s["seeds"]) == (1, 1, 10, 1) and s["p"] == 1.0
    assert g["p_holm"] == pytest.approx(2 * g["p"]) and s["p_holm"] == 1.0  # Holm over the two at point 100
    assert "200" not in out["accuracy"]["same"] and out["accuracy"]["good"]["200"]["p_holm"] == g["p"]
    assert item_tests([], [1], ["accuracy"], evaluations) == {}
    pair = item_tests([("good", "same")], [100], ["accuracy"], evaluations, contrasts=True)["accuracy"]
    assert list(pair) == ["good - same"] and pair["good - same"]["100"]["seeds"] == 1


def test_compare_summary_reads_item_outcomes_and_reports_them(tmp_path):
    from rltf.eval.compare import CompareConfig, summarize
    from rltf.eval.compare_report import markdown

    cfg = CompareConfig(output_dir=str(tmp_path), methods={"grpo": {"method": "grpo"}, "fm": {"method": "rltf-fm"}},
                        seeds=[0, 1], budget_tokens=100, metrics=["instruction_loose"], baseline="grpo",
                        contrasts=[("grpo", "fm")])
    ids = ["c/0", "c/1", "c/2", "c/3"]
    loose = {"grpo": [0.5, 0.5, 0.0, 1.0], "fm": [1.0, 0.5, 0.5, 1.0]}
    right = {"grpo": [False, False, False, True], "fm": [True, False, False, True]}
    results = []
    for name in cfg.methods:
        for seed in cfg.seeds:
            run = cfg.run_dir("add2", name, seed)
            run.mkdir(parents=True)
            first = items(dict(zip(ids, right[name])), dict(zip(ids, loose[name])))
            (run / "eval_outcomes.jsonl").write_text(
                json.dumps({"step": 0, "tokens": 0, "first": items(dict(zip(ids, right["grpo"])),
                                                                  dict(zip(ids, loose["grpo"])))}) + "\n"
                + json.dumps({"step": 7, "tokens": 110, "first": first}) + "\n")
            results.append({"name": name, "method": name, "seed": seed, "evals": [
                {"step": 0, "tokens": 0, "eval/accuracy": 0.25, "eval/instruction_loose": 0.5},
                {"step": 7, "tokens": 110, "eval/accuracy": sum(right[name]) / 4,
                 "eval/instruction_loose": sum(loose[name]) / 4}]})
    summary = summarize(cfg, results)
    tests = summary["item_tests"]["add2"]
    acc = tests["accuracy"]["fm"]["100"]
    assert (acc["only_a"], acc["only_b"], acc["n"], acc["seeds"]) == (2, 0, 8, 2) and acc["p"] == pytest.approx(0.5)
    assert tests["accuracy"]["fm"]["0"]["p"] == 1.0 and tests["accuracy"]["fm"]["0"]["mean_diff"] == 0
    lo = tests["instruction_loose"]["fm"]["100"]  # d = (0.5, 0, 0.5, 0) twice: mean 0.25
    assert lo["test"] == "paired-t" and lo["mean_diff"] == pytest.approx(0.25) and lo["n"] == 8
    text = markdown(summary)
    assert "Item by item, accuracy against grpo" in text and "+0.250 (2 / 0, p 0.50, Holm 0.50, n 8)" in text
    assert "Item by item, instruction_loose against grpo" in text
    back = summary["item_contrasts"]["add2"]["accuracy"]["grpo - fm"]["100"]  # the same pairs, the other way
    assert (back["only_a"], back["only_b"]) == (0, 2) and "Item by item, accuracy in the contrasts (a - b)" in text


def test_load_outcomes_keys_records_by_step_and_names_a_bad_line(tmp_path):
    assert load_outcomes(tmp_path) == {}
    (tmp_path / "eval_outcomes.jsonl").write_text('{"step": 0, "first": {}}\n\n{"step": 3, "first": {}}\n')
    assert sorted(load_outcomes(tmp_path)) == [0, 3]
    (tmp_path / "eval_outcomes.jsonl").write_text('{"step": 0}\n{"step": \n')
    with pytest.raises(ValueError, match="eval_outcomes.jsonl:2: not JSON"):
        load_outcomes(tmp_path)


def test_seed_and_task_placeholders_give_each_run_its_own_starting_model(tmp_path):
    from rltf.eval.compare import CompareConfig, run_config

    cfg = CompareConfig(output_dir=str(tmp_path), tasks=["constraints", "add2"], seeds=[0, 2],
                        methods={"grpo": {"method": "grpo", "model": "runs/warm/{task}-s{seed}/model"}},
                        common={"model": "smollm2-135m", "run_name": "x{seed}", "eval_n": 4})
    method, values = run_config(cfg, "grpo", 2, tmp_path / "r", task="constraints")
    assert method == "grpo" and values["model"] == "runs/warm/constraints-s2/model"
    assert values["run_name"] == "x2" and values["eval_n"] == 4 and values["seed"] == 2


def test_a_held_out_evaluation_records_each_items_task_metrics_and_they_average_to_the_logged_ones(tmp_path):
    """On the constraint task each item carries strict / instruction_strict / instruction_loose, and the
    logged means are the means of the items' values."""
    from helpers import trainer
    from rltf.models.backend import Generation
    from rltf.rollout.evaluation import evaluate

    tr = trainer("grpo", tmp_path, task="constraints")
    texts = ["all lowercase words here, with a comma.", "NO COMMAS AT ALL", "* one\n* two\n\nP.S. done"]

    class Scripted:
        name, calls = "scripted", 0

        def generate(self, conversations, params, seed=0, keys=None):
            out = []
            for _ in conversations:
                text = texts[Scripted.calls % len(texts)]
                Scripted.calls += 1
                ids = tr.tokenizer(text, add_special_tokens=False)["input_ids"]
                out.append(Generation(text, ids, [-1.0] * len(ids), [1], "stop"))
            return out

        def chat_prompt_ids(self, messages):
            return tr.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)

    result = evaluate(tr.task, Scripted(), n=9, seed=12345)
    values = list(result["items"].values())
    assert len(values) == 9 and all(set(v) == {"correct", "reward", "strict", "instruction_strict",
                                               "instruction_loose"} for v in values)
    for key in ("strict", "instruction_strict", "instruction_loose"):
        assert result["metrics"][key] == pytest.approx(sum(v[key] for v in values) / 9)
    assert sum(v["correct"] for v in values) == round(result["accuracy"] * 9)
    assert all(v["correct"] == (v["strict"] == 1.0) for v in values)  # strict = every constraint followed
    assert 0 < sum(v["instruction_loose"] for v in values) < 9  # the scripted answers follow some, not all
