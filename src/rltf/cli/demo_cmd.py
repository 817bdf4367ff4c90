"""``rltf demo``: learning from text feedback on the embedded model, on a CPU preset, in minutes.

Shows a few two-turn episodes (answer, critique, revision), trains the policy with an RLTF method
for a few steps, then prints base vs trained single-turn accuracy on held-out prompts and writes a
learning-curve PNG. ``--steps 0`` only runs the feedback loop.
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from rltf.cli import add_command
from rltf.cli.common import bounded, write_json
from rltf.cli.train_cmd import parse_sets
from rltf.rollout import SamplingParams, run_episodes
from rltf.methods import build_trainer, make_config
from rltf.engine.plots import plot_learning_curve

DEMO = dict(task="add2", feedback="critic", prompts_per_step=4, group_size=4, temperature=1.0,
            learning_rate=2e-5, eval_n=64, micro_batch_size=16, generation_batch_size=64, save_total_limit=1)


def register(sub) -> None:
    p = add_command(sub, "demo")
    p.add_argument("--model", default="smollm2-135m", help="policy model")
    p.add_argument("--method", default="rltf-fm", help="grpo, multiturn-grpo, rltf-sd, rltf-fm or rltf-sd+fm")
    p.add_argument("--task", default=DEMO["task"], help="task spec (default: the CPU preset add2)")
    p.add_argument("--steps", type=bounded(int, ge=0), default=10, help="training steps (0 = only show the feedback loop)")
    p.add_argument("--eval-n", type=bounded(int, ge=1), default=DEMO["eval_n"], help="held-out prompts for base/trained accuracy")
    p.add_argument("--seed", type=bounded(int, ge=0), default=0)
    p.add_argument("--show", type=bounded(int, ge=0), default=2, help="two-turn episodes to print before training")
    p.add_argument("--output-dir", default="runs/demo", help="checkpoints, metrics.jsonl and learning_curve.png")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a training config key")
    p.set_defaults(func=run)


def _show_episodes(trainer, n_show: int, seed: int) -> None:
    task = trainer.task
    problems = task.problems("eval", 8, seed=seed + 99)
    params = SamplingParams(max_new_tokens=task.max_new_tokens, temperature=1.0)
    episodes = run_episodes(task, problems, trainer.backend, trainer.feedback, params, rounds=2, seed=seed)
    for e in [e for e in episodes if len(e.turns) > 1][:n_show]:
        print("=" * 72)
        print(f"[{e.problem_id}] {e.turns[0].messages[-1]['content'].splitlines()[0][:200]}")
        print(f"answer   (reward {e.turns[0].reward:+.1f}): {e.turns[0].text.strip()[:200]}")
        print(f"critique : {e.critiques[0].text}")
        print(f"revision (reward {e.turns[1].reward:+.1f}): {e.turns[1].text.strip()[:200]}")
    print("=" * 72)


def run(args) -> int:
    t0 = time.perf_counter()
    overrides = {**DEMO, "model": args.model, "task": args.task, "seed": args.seed, "eval_n": args.eval_n,
                 "output_dir": args.output_dir, "max_steps": max(args.steps, 1), "eval_every": 0,
                 "save_every": 0, "eval_at_start": True}
    overrides.update({k: yaml.safe_load(v) for k, v in parse_sets(args.set).items()})
    config = make_config(args.method, None, overrides)
    print(f"loading {config.model} ...", flush=True)
    trainer = build_trainer(config, console=lambda s: print(s, flush=True))
    print(f"the feedback loop on {trainer.task.name}: answer -> {trainer.feedback.name} critique -> revision", flush=True)
    _show_episodes(trainer, args.show, args.seed)
    if args.steps == 0:
        return 0
    print(f"training {config.method} for {config.max_steps} steps ({config.prompts_per_step} prompts x "
          f"{config.group_size} samples per step); evaluating {config.eval_n} held-out prompts before and after",
          flush=True)
    summary = trainer.train()
    history = summary["history"]
    base, final = history[0], history[-1]
    png = plot_learning_curve(Path(config.output_dir) / "metrics.jsonl", Path(config.output_dir) / "learning_curve.png",
                              f"{config.method} on {config.task} ({config.model})")
    print("=" * 72)
    print(f"single-turn held-out accuracy (greedy, n={config.eval_n}):")
    print(f"  base    : {base['eval/accuracy']:.3f}  (95% CI {base['eval/ci95_low']:.3f}-{base['eval/ci95_high']:.3f})")
    print(f"  trained : {final['eval/accuracy']:.3f}  (95% CI {final['eval/ci95_low']:.3f}-{final['eval/ci95_high']:.3f})"
          f"  after {summary['step']} steps of {config.method}")
    print(f"learning curve: {png}; checkpoint: {summary['checkpoint']}; {time.perf_counter() - t0:.0f} s in all")
    write_json(Path(config.output_dir) / "demo_summary.json",
               {"method": config.method, "task": config.task, "steps": summary["step"], "eval_n": config.eval_n,
                "base": base, "trained": final})
    return 0
