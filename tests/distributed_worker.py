"""Training runs that tests/test_distributed.py starts as ONE process (``python``) and as TWO
(``accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml``) on the same global batch.

    python tests/distributed_worker.py OUT_DIR METHOD [METHOD ...] [--steps 3] [--stop-after K] [--resume]
                                       [--backend hf|vllm]

For each method it trains the tiny random model and, on the first process, writes
``OUT_DIR/METHOD/final.pt`` (every trainable tensor, the value head's too) beside the run's
``metrics.jsonl``. ``--stop-after K`` stops once step K is saved (a stopped run); ``--resume``
continues the run in ``OUT_DIR/METHOD`` from its last checkpoint.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import torch

from rltf.methods import build_trainer, make_config
from rltf.engine.distributed import exit_finished_process
from helpers import FirstCharsCritic, parity_grader  # this file runs as a script from tests/

COMMON = dict(model="tiny-random", max_new_tokens=8, eval_n=6, eval_every=2, eval_at_start=False, save_every=1,
              save_total_limit=5, micro_batch_size=3, seed=3, lr_scheduler="linear")  # the schedule must reach
# every engine's optimizer (DeepSpeed wraps rltf's AdamW): a decaying learning rate shows it
RUNS = {
    # 4 prompts x 3 samples: each process holds 2 whole groups
    "grpo": dict(task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3),
    "grpo-lora": dict(method="grpo", task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-2,
                      use_lora=True, lora_r=4, lora_alpha=8),
    "rltf-fm": dict(task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3, feedback="critic"),
    "span-ppo": dict(task="fact_summary", prompts_per_step=4, group_size=2, learning_rate=1e-3,
                     value_learning_rate=1e-2, mini_batch_size=4, ppo_epochs=2, kl_coef=0.1),
    # SDPO: a live teacher (a second forward of the sharded policy per SD micro-batch) and an EMA
    # teacher (a whole copy, updated from the gathered policy after each step). The sampled-token
    # estimate: the random model's next-token distributions are near uniform, so a full/top-k KL
    # between two contexts is ~1e-4 and its gradient mostly float32 cancellation noise. Half GRPO: the
    # SD gradient alone is small enough (norm ~0.04) for Adam to amplify rounding past the tolerance
    "sdpo": dict(task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3, feedback="critic",
                 teacher="live", sd_weight=0.5),
    "sdpo-ema": dict(method="sdpo", task="add2", prompts_per_step=4, group_size=3, learning_rate=1e-3,
                     feedback="critic", teacher="ema", ema_rate=0.5, sd_weight=0.5),
    # SFT of the span reward model: 6 annotation records, batches of 4 (the epoch's last batch is short)
    "reward-model": dict(batch_size=4, micro_batch_size=1, epochs=2, learning_rate=1e-3, warmup_steps=0),
}
RM_KEYS = ("model", "seed", "save_every", "save_total_limit", "micro_batch_size")


def _whole(p: torch.Tensor) -> torch.Tensor:
    """A parameter's full value (an FSDP2 shard is gathered from every process)."""
    return (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()


def annotations(out: Path) -> Path:
    """Span annotations of 6 fact summaries with a wrong city (the programmatic critic labels them)."""
    from rltf.feedback import ProgrammaticCritic
    from rltf.spans.annotate import annotate
    from rltf.tasks import get_task

    task = get_task("fact_summary")
    problems = task.problems("train", 6)
    answers = [p.answer.replace(p.metadata["facts"]["city"], "Paris") for p in problems]
    records, _ = annotate(task, problems, answers, ProgrammaticCritic())
    path = out / f"annotations-{os.environ.get('RANK', '0')}.jsonl"  # one file per process: no write race
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_reward_model(out: Path, steps: int, stop_after: int | None, resume: bool):
    from rltf.methods import make_config
    from rltf.methods.reward_model import RewardModelTrainer

    overrides = {**{k: COMMON[k] for k in RM_KEYS}, **RUNS["reward-model"], "train_data": str(annotations(out)),
                 "output_dir": str(out / "reward-model")}
    trainer = RewardModelTrainer(make_config("reward-model", overrides=overrides), console=lambda s: None,
                                 resume=str(out / "reward-model") if resume else None)
    finish(trainer, out / "reward-model", stop_after, resume)
    return trainer


def finish(trainer, run_dir: Path, stop_after: int | None, resume: bool) -> None:
    """Train (until ``stop_after`` if given); the first process writes start.pt and final.pt."""
    if trainer.dist.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.save({f"policy.{n}": p.detach().clone() for n, p in trainer.model.named_parameters()},
                   run_dir / "start.pt")
    if stop_after is not None:
        trainer.done = lambda: trainer.step >= stop_after
    trainer.train()
    engine = getattr(trainer, "engine", None)
    with trainer.full_weights() if engine is not None else contextlib.nullcontext():  # ZeRO-3 gathers
        tensors = {f"policy.{n}": _whole(p) for n, p in trainer.model.named_parameters()}  # collective (FSDP)
        for name, module in getattr(trainer, "heads", {}).items():  # the reward-model SFT has none
            tensors.update({f"{name}.{n}": p.detach().clone() for n, p in module.named_parameters()})
    if trainer.dist.is_main:
        backend = getattr(trainer, "backend", None)
        torch.save({"tensors": tensors, "world_size": trainer.dist.world_size,
                    "history": getattr(trainer, "history", []), "backend": getattr(backend, "name", None),
                    "sharded": trainer.sharded, "zero_stage": engine.zero_optimization_stage() if engine else None,
                    "weight_syncs": getattr(backend, "weight_syncs", None)}, run_dir / "final.pt")


def run(out: Path, method: str, steps: int, stop_after: int | None, resume: bool, backend: str = "hf"):
    if method == "reward-model":
        return run_reward_model(out, steps, stop_after, resume)
    engine = {"backend": backend}
    if backend == "vllm":  # each process starts its own small engine
        engine.update(vllm_kv_cache_gb=0.25, vllm_max_model_len=1024)
    run = dict(RUNS[method])
    cfg = make_config(run.pop("method", method), overrides={**COMMON, **run, **engine, "max_steps": steps,
                                                            "output_dir": str(out / method)})
    trainer = build_trainer(cfg, console=lambda s: None, resume=str(out / method) if resume else None)
    trainer.task.grade = parity_grader
    if method.endswith("ppo"):
        trainer.feedback = FirstCharsCritic()
    finish(trainer, out / method, stop_after, resume)
    return trainer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("methods", nargs="+", choices=sorted(RUNS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--stop-after", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    args = p.parse_args()
    for method in args.methods:
        trainer = run(args.out, method, args.steps, args.stop_after, args.resume, args.backend)
    if trainer.dist.enabled:  # as `rltf train` ends a finished multi-process run
        trainer.dist.close()
        exit_finished_process(0)


if __name__ == "__main__":
    main()
