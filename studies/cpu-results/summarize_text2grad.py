"""Table + PNG of span-ppo vs scalar-ppo runs (studies/cpu-results/results_text2grad.sh) for docs/RESULTS.md.

    python studies/cpu-results/summarize_text2grad.py runs/t2g [--png docs/img/text2grad-fact-summary.png]

For each method and evaluated step: held-out fact F1 (mean over seeds, 95 % t-interval over
seeds, and each seed's value), exact-summary rate, and generated tokens so far.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from rltf.eval.compare_stats import interval  # mean and 95 % t-interval over seeds


def load(root: Path):
    runs = defaultdict(dict)  # method -> seed -> list of metric rows
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not (d / "metrics.jsonl").exists():
            continue
        method, _, seed = d.name.rpartition("-s")
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
        runs[method][int(seed)] = rows
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--png", default="docs/img/text2grad-fact-summary.png")
    args = ap.parse_args()
    runs = load(Path(args.root))
    print("| method | step | generated tokens (mean) | fact F1 mean ± 95 % CI (seeds) | per seed | "
          "precision | recall | exact summaries |")
    print("|---|---|---|---|---|---|---|---|")
    curves = {}
    for method, seeds in sorted(runs.items()):
        by_step = defaultdict(list)
        for seed, rows in sorted(seeds.items()):
            for r in rows:
                if "eval/fact_f1" in r:
                    by_step[r["step"]].append((seed, r))
        curves[method] = by_step
        for step in sorted(by_step):
            rows = [r for _, r in by_step[step]]
            f1 = [r["eval/fact_f1"] for r in rows]
            m, h = interval(f1)
            toks = statistics.mean(r.get("tokens/cumulative", 0.0) for r in rows)
            print(f"| {method} | {step} | {toks:,.0f} | {m:.3f} ± {h:.3f} (n={len(f1)}) | "
                  + ", ".join(f"s{s}: {r['eval/fact_f1']:.3f}" for s, r in by_step[step]) + " | "
                  + f"{statistics.mean(r['eval/fact_precision'] for r in rows):.3f} | "
                  + f"{statistics.mean(r['eval/fact_recall'] for r in rows):.3f} | "
                  + f"{statistics.mean(r['eval/accuracy'] for r in rows):.3f} |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for (method, by_step), color in zip(sorted(curves.items()), ("tab:blue", "tab:orange", "tab:green")):
        steps = sorted(by_step)
        means = [statistics.mean(r["eval/fact_f1"] for _, r in by_step[s]) for s in steps]
        ax.plot(steps, means, marker="o", color=color, label=f"{method} (mean)")
        seeds = sorted({s for st in steps for s, _ in by_step[st]})
        for seed in seeds:
            pts = [(st, r["eval/fact_f1"]) for st in steps for s, r in by_step[st] if s == seed]
            ax.plot(*zip(*pts), color=color, alpha=0.3, linewidth=1)
    ax.set_xlabel("PPO step (16 prompts each)")
    ax.set_ylabel("held-out fact F1 (greedy, n=100)")
    ax.set_title("fact_summary, SmolLM2-135M: span-level vs scalar PPO")
    ax.legend()
    ax.grid(alpha=0.3)
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
