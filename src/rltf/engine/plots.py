"""Learning-curve PNGs from a run's metrics.jsonl (matplotlib, no display needed)."""
from __future__ import annotations

import json
from pathlib import Path


def plot_learning_curve(metrics_path: str | Path, out_png: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    train = [r for r in rows if "reward/turn0" in r]
    evals = [r for r in rows if "eval/accuracy" in r]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if evals:
        steps = [r["step"] for r in evals]
        acc = [r["eval/accuracy"] for r in evals]
        axes[0].plot(steps, acc, marker="o", label="held-out single-turn accuracy")
        axes[0].fill_between(steps, [r["eval/ci95_low"] for r in evals], [r["eval/ci95_high"] for r in evals],
                             alpha=0.2, label="95% interval")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("accuracy (greedy)")
    axes[0].set_ylim(0, 1)
    axes[0].legend(loc="lower right", fontsize=8)
    if train:
        steps = [r["step"] for r in train]
        axes[1].plot(steps, [r["accuracy/turn0"] for r in train], label="first-answer accuracy (sampled)")
        if any("accuracy/turn1" in r for r in train):
            axes[1].plot([r["step"] for r in train if "accuracy/turn1" in r],
                         [r["accuracy/turn1"] for r in train if "accuracy/turn1" in r], label="revision accuracy (sampled)")
    axes[1].set_xlabel("step")
    axes[1].set_ylim(0, 1)
    axes[1].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
