"""What the feedback-use warm start changes, per method: each method's warm-arm run against its base-arm
run of the same seed, item by item on the held-out set (rltf.eval.item_tests), pooled over the seeds
both arms have finished; Holm over the methods at each budget point. Markdown on stdout.
    python studies/decisive/warm_vs_base.py > studies/decisive/warm-vs-base.md"""
from __future__ import annotations

from pathlib import Path

from rltf.eval.compare import finished_runs, item_evaluations, load_compare_config
from rltf.eval.compare_report import item_tests_markdown
from rltf.eval.item_tests import item_tests

HERE = Path(__file__).resolve().parent


def main() -> None:
    arms = {arm: load_compare_config(HERE / arm / "study.yaml") for arm in ("warm", "base")}
    results = {arm: finished_runs(cfg) for arm, cfg in arms.items()}
    warm = arms["warm"]
    print("# The decisive study: warm start vs the initial model, per method\n")
    print(f"Runs finished: warm {len(results['warm'])}, base {len(results['base'])}. Each row: the method "
          "started from the warm-started model minus the same method started from the initial model.\n")
    for task in warm.task_names:
        per_arm = {arm: item_evaluations(cfg, [r for r in results[arm] if r.get("task") == task], task)
                   for arm, cfg in arms.items()}

        def evaluations(key: str, point: int):
            arm, name = key.split(":", 1)
            return per_arm[arm](name, point)

        pairs = [(f"warm:{m}", f"base:{m}") for m in warm.methods if m in arms["base"].methods]
        tests = item_tests(pairs, warm.points, warm.all_metrics, evaluations, contrasts=True)
        print(f"## {task}\n")
        print(item_tests_markdown(warm.points, tests, "warm start - initial model") if tests else "No pairs yet.\n")


if __name__ == "__main__":
    main()
