"""``rltf demo``: the feedback loop on the default model, on a CPU-scale preset, in a few minutes.

Samples answers, has the programmatic critic write critiques for the wrong ones, asks for
revisions, and prints a few episodes plus first- vs second-turn accuracy.
"""
from __future__ import annotations

import time

from rltf.cli.common import add_feedback_args, add_model_args, build_feedback_from_args, load_backend, write_json


def register(sub) -> None:
    p = sub.add_parser("demo", help="watch the two-turn feedback loop on the default model")
    add_model_args(p)
    p.add_argument("--task", default="add2", help="task spec (default: the CPU preset add2)")
    p.add_argument("--n", type=int, default=32, help="number of prompts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of both turns")
    p.add_argument("--show", type=int, default=3, help="episodes to print")
    p.add_argument("--output", help="write a JSON summary here")
    p.add_argument("--episodes", help="write every episode (texts, token ids, rewards, critiques, timings) as JSONL")
    add_feedback_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rltf.eval.stats import wilson_interval
    from rltf.rollout import SamplingParams, run_episodes
    from rltf.tasks import get_task

    task = get_task(args.task)
    t0 = time.perf_counter()
    print(f"loading {args.model} ...", flush=True)
    backend = load_backend(args)
    feedback = build_feedback_from_args(args, backend)
    problems = task.problems("eval", args.n, seed=args.seed)
    params = SamplingParams(max_new_tokens=task.max_new_tokens, temperature=args.temperature)
    print(f"running {len(problems)} two-turn episodes on {task.name} with {feedback.name} feedback ...", flush=True)
    episodes = run_episodes(task, problems, backend, feedback, params, n_samples=1, rounds=2, seed=args.seed)
    if args.episodes:
        from rltf.rollout import write_episodes

        write_episodes(episodes, args.episodes)
    shown = [e for e in episodes if len(e.turns) > 1][: args.show]
    for e in shown:
        print("=" * 72)
        print(f"[{e.problem_id}] {e.turns[0].messages[-1]['content'].splitlines()[0][:200]}")
        print(f"turn 1 (reward {e.turns[0].reward:+.1f}): {e.turns[0].text.strip()[:300]}")
        print(f"critique: {e.critiques[0]['text']}")
        print(f"turn 2 (reward {e.turns[1].reward:+.1f}): {e.turns[1].text.strip()[:300]}")
    n = len(episodes)
    first = sum(e.turns[0].correct for e in episodes)
    final = sum(e.turns[-1].correct for e in episodes)
    revised = [e for e in episodes if len(e.turns) > 1]
    fixed = sum(e.turns[1].correct for e in revised)
    lo1, hi1 = wilson_interval(first, n)
    lo2, hi2 = wilson_interval(final, n)
    print("=" * 72)
    print(f"first-turn accuracy : {first / n:.3f} (95% CI {lo1:.3f}-{hi1:.3f}, n={n})")
    print(f"after revision      : {final / n:.3f} (95% CI {lo2:.3f}-{hi2:.3f}); "
          f"{fixed} of {len(revised)} wrong answers fixed by the revision turn")
    print(f"critiques: {feedback.stats.requested} requested, {feedback.stats.failed} fell back; "
          f"{time.perf_counter() - t0:.0f} s in all")
    if args.output:
        write_json(args.output, {"task": task.name, "n": n, "first_turn_accuracy": first / n,
                                 "second_turn_accuracy": final / n, "fixed": fixed, "revised": len(revised)})
    return 0
