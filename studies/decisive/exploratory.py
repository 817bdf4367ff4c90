"""The decisive study's exploratory comparisons: the warm arm's methods against each other rather than
against GRPO (the two-turn methods against multi-turn GRPO, which trains on the same episodes without
distillation or feedback modelling, and the RLTF variants against one another). They are not among the
pre-registered tests (docs/RESULTS.md, "The decisive study"), so `rltf compare`'s report does not
print them and no multiplicity adjustment is made: read them as exploratory. Item by item at the full
budget on the study's metric (strict accuracy on constraints), pooled over the seeds both runs have and
seed by seed, with the exact two-sided McNemar test of rltf.eval.item_tests. Markdown on stdout.
    python studies/decisive/exploratory.py > studies/decisive/exploratory.md"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rltf.eval.compare import finished_runs, item_evaluations, load_compare_config
from rltf.eval.item_tests import item_difference, item_key, paired_values

HERE = Path(__file__).resolve().parent
PAIRS = [("rltf-sd", "multiturn-grpo"), ("rltf-fm", "multiturn-grpo"), ("rltf-sd+fm", "multiturn-grpo"),
         ("rltf-sd+fm-correctness", "multiturn-grpo"), ("rltf-sd", "rltf-fm"), ("rltf-sd+fm", "rltf-sd"),
         ("rltf-sd+fm", "rltf-fm"), ("rltf-sd+fm-correctness", "rltf-sd")]


def cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return "n/a"
    return f"{c['mean_diff']:+.3f} ({c['only_a']} / {c['only_b']}, p {c['p']:.2g})"


def table(evaluations: Callable[[str, int], list[dict[str, Any] | None]], seeds: list[int], point: int,
          key: str) -> list[str]:
    """The markdown rows of :data:`PAIRS` at ``point``; ``evaluations(name, point)`` -> per seed the run's
    ``"first"`` items or None (rltf.eval.compare.item_evaluations); ``key`` the items' 0/1 outcome."""
    lines = ["| a - b | pooled | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|---|" + "---|" * len(seeds)]
    for a, b in PAIRS:
        per_seed = [paired_values(x, y, key) if x is not None and y is not None else None
                    for x, y in zip(evaluations(a, point), evaluations(b, point))]
        pooled = [pair for values in per_seed if values for pair in values]
        cells = [cell(item_difference(pooled))] + [cell(item_difference(v)) if v else "n/a" for v in per_seed]
        lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    cfg = load_compare_config(HERE / "warm" / "study.yaml")
    runs = finished_runs(cfg)
    print("# The decisive study, warm arm: exploratory comparisons (not pre-registered)\n")
    print(f"Each row a - b at {cfg.budget_tokens:,} generated tokens, {cfg.metric} item by item: difference, the "
          "discordant items `right in a only / in b only` and the exact two-sided McNemar p, with no multiplicity "
          "adjustment; pooled over the seeds both runs have finished, then seed by seed.\n")
    for task in cfg.task_names:
        evaluations = item_evaluations(cfg, [r for r in runs if r.get("task") == task], task)
        print(f"## {task}\n")
        print("\n".join(table(evaluations, cfg.seeds, cfg.budget_tokens, item_key(cfg.metric))) + "\n")


if __name__ == "__main__":
    main()
