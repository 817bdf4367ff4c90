"""Training runs that tests/test_distributed.py starts as ONE process (``python``) and as TWO
(``accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml``) on the same global batch.

    python tests/distributed_worker.py OUT_DIR METHOD [METHOD ...] [--steps 3] [--stop-after K] [--resume]

For each method it trains the tiny random model and, on the first process, writes
``OUT_DIR/METHOD/final.pt`` (every trainable tensor, the value head's too) beside the run's
``metrics.jsonl``. ``--stop-after K`` stops once step K is saved (a stopped run); ``--resume``
continues the run in ``OUT_DIR/METHOD`` from its last checkpoint.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rltf.feedback.base import Critique, FeedbackProvider, Span
from rltf.tasks.base import Score
from rltf.trainers import build_trainer, make_config

COMMON = dict(model="tiny-random", max_new_tokens=8, eval_n=6, eval_every=2, eval_at_start=False, save_every=1,
              save_total_limit=5, micro_batch_size=3, seed=3)
RUNS = {
    # 4 prompts x 3 samples: each process holds 2 whole groups
    "grpo": dict(task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3),
    "rltf-fm": dict(task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3, feedback="critic"),
    "span-ppo": dict(task="fact_summary", prompts_per_step=4, group_size=2, learning_rate=1e-3,
                     value_learning_rate=1e-2, mini_batch_size=4, ppo_epochs=2, kl_coef=0.1),
}


def parity_grader(problem, completion):
    """Mixed rewards for the random model's answers (so group advantages are not all 0)."""
    good = len(completion) % 2 == 0
    return Score(1.0 if good else 0.0, good, True, "parity", None)


class FirstCharsCritic(FeedbackProvider):
    """Labels the first 4 characters of an answer: positive when the answer's length is even."""

    name = "first-chars"

    def critique(self, task, problem, answer, score):
        self.stats.count(None)
        quote = answer[:4]
        if not quote.strip():
            return Critique("Nothing to say.", [], self.name)
        return Critique("About the start.", [Span(quote, "positive" if len(answer) % 2 == 0 else "negative", 0)],
                        self.name)


def run(out: Path, method: str, steps: int, stop_after: int | None, resume: bool) -> None:
    cfg = make_config(method, overrides={**COMMON, **RUNS[method], "max_steps": steps,
                                         "output_dir": str(out / method)})
    trainer = build_trainer(cfg, console=lambda s: None, resume=str(out / method) if resume else None)
    trainer.task.grade = parity_grader
    if method.endswith("ppo"):
        trainer.feedback = FirstCharsCritic()
    if trainer.dist.is_main and not resume:
        (out / method).mkdir(parents=True, exist_ok=True)
        torch.save({f"policy.{n}": p.detach().clone() for n, p in trainer.model.named_parameters()},
                   out / method / "start.pt")
    if stop_after is not None:
        trainer.done = lambda: trainer.step >= stop_after
    trainer.train()
    if trainer.dist.is_main:
        tensors = {f"policy.{n}": p.detach().clone() for n, p in trainer.model.named_parameters()}
        for name, module in trainer.extra_modules.items():
            tensors.update({f"{name}.{n}": p.detach().clone() for n, p in module.named_parameters()})
        torch.save({"tensors": tensors, "world_size": trainer.dist.world_size, "history": trainer.history},
                   out / method / "final.pt")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("methods", nargs="+", choices=sorted(RUNS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--stop-after", type=int)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    for method in args.methods:
        run(args.out, method, args.steps, args.stop_after, args.resume)


if __name__ == "__main__":
    main()
