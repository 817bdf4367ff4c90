"""Print the Markdown table of docs/RESULTS.md from run directories' metrics.jsonl.

    python studies/cpu-results/summarize_results.py runs/results-add2-s0
"""
import json
import sys
from pathlib import Path

ORDER = ["grpo", "multiturn-grpo", "rltf-sd", "rltf-fm", "rltf-sd+fm"]


def main(root: str) -> None:
    runs = {p.parent.name: [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
            for p in Path(root).glob("*/metrics.jsonl")}
    print("| method | steps | generated tokens | held-out accuracy (n, 95 % CI) | train acc. turn 1 (last 3 steps) "
          "| revision acc. (last 3) | time |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for name in sorted(runs, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        rows = runs[name]
        evals = [r for r in rows if "eval/accuracy" in r]
        steps = [r for r in rows if "reward/turn0" in r]
        if evals and evals[0]["step"] == 0:
            base = base or evals[0]
        last = evals[-1]
        tail = steps[-3:]
        acc0 = sum(r["accuracy/turn0"] for r in tail) / len(tail)
        rev = [r["accuracy/turn1"] for r in tail if "accuracy/turn1" in r]
        seconds = sum(r["time/step"] for r in steps)
        print(f"| {name} | {last['step']} | {int(steps[-1]['tokens/cumulative'])} | {last['eval/accuracy']:.3f} "
              f"({last['eval/ci95_low']:.3f}-{last['eval/ci95_high']:.3f}) | {acc0:.3f} | "
              f"{(sum(rev) / len(rev)) if rev else float('nan'):.3f} | {seconds / 60:.1f} min |")
    if base:
        print(f"| base (no training) | 0 | 0 | {base['eval/accuracy']:.3f} ({base['eval/ci95_low']:.3f}-"
              f"{base['eval/ci95_high']:.3f}) | | | |")


if __name__ == "__main__":
    main(sys.argv[1])
