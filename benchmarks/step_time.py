"""Time of one training step of each method on its CPU recipe (not a test).

    python benchmarks/step_time.py [--methods grpo,rltf-fm,...] [--steps 2] [--output FILE.json]

Each method runs its recipe (``recipes/cpu-add2-*.yaml``, ``recipes/cpu-fact-summary-*-ppo.yaml``)
on the embedded default model in its own subprocess: one warm-up step (not timed), then ``--steps``
timed steps, with no evaluation and no checkpoint. The rollouts are seeded, so two versions of the
code that train the same way sample the same answers and do the same work: the script also records
each step's losses, so a before/after comparison can check that the numbers did not change.

To compare two versions of the code, run the script once per version (``PYTHONPATH=OLD/src`` for
the old one) and pass both JSON files to ``--compare BEFORE.json AFTER.json``. Whole steps include
generation, whose time drifts with the machine; ``--backward-against OLD/src`` times only the
training phase (one rollout, then ``--repeats`` forward/backward passes over it) of both versions,
alternating per method, which is the fairer comparison when only the training code changed.

The machine's fp32 matmul peak is measured in the same run (figures differ across CPUs).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name, matmul_flops

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "grpo": "cpu-add2-grpo.yaml", "multiturn-grpo": "cpu-add2-multiturn-grpo.yaml", "rltf-sd": "cpu-add2-rltf-sd.yaml",
    "rltf-fm": "cpu-add2-rltf-fm.yaml", "rltf-sd+fm": "cpu-add2-rltf-sd+fm.yaml",
    "span-ppo": "cpu-fact-summary-span-ppo.yaml", "scalar-ppo": "cpu-fact-summary-scalar-ppo.yaml",
}
PHASES = ("time/step", "time/rollout", "time/generate", "time/backward")


def _api():
    """build_trainer and make_config of this version of rltf (rltf.trainers before the engine redesign)."""
    try:
        from rltf.methods import build_trainer, make_config
    except ImportError:
        from rltf.trainers import build_trainer, make_config
    return build_trainer, make_config


def run_method(method: str, steps: int, model: str) -> dict:
    """One method in this process: warm-up step, then ``steps`` timed steps."""
    import tempfile

    build_trainer, make_config = _api()

    with tempfile.TemporaryDirectory() as out:
        cfg = make_config(method, ROOT / "recipes" / RECIPES[method], overrides=dict(
            model=model, output_dir=out, eval_at_start=False, eval_every=0, save_every=0, max_steps=steps + 1))
        trainer = build_trainer(cfg, console=lambda s: None)
        rows = []
        for i in range(steps + 1):
            m = trainer.train_step()
            if i:
                rows.append({k: float(v) for k, v in m.items()})
    return {"steps": rows,
            "mean": {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in PHASES}}


def run_backward(method: str, repeats: int, model: str) -> dict:
    """The training phase alone: one rollout, then ``repeats`` forward/backward passes over it
    (gradients zeroed, no optimizer step), the first one a warm-up. Seconds of each timed pass."""
    import tempfile

    build_trainer, make_config = _api()
    with tempfile.TemporaryDirectory() as out:
        cfg = make_config(method, ROOT / "recipes" / RECIPES[method], overrides=dict(
            model=model, output_dir=out, eval_at_start=False, eval_every=0, save_every=0))
        trainer = build_trainer(cfg, console=lambda s: None)
        problems = trainer.stream.take(cfg.prompts_per_step)
        if hasattr(trainer, "make_batch"):  # before the engine redesign: a trainer class per method
            batch, metrics, n = trainer.make_batch(problems, seed=12345)
            accumulate = trainer._accumulate
        else:  # the engine: the method's collect, then what the engine's step does with it
            collected = trainer.method.collect(trainer, problems, 12345)
            batch, n = collected.batch, collected.episodes
            if trainer.method.minibatches is None:
                batch = trainer.drop_zero_advantage(batch)
            accumulate = trainer.accumulate
        times = []
        for _ in range(repeats + 1):
            trainer.optimizer.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            if method in ("span-ppo", "scalar-ppo"):  # PPO normalises a minibatch by its own size
                n = len(batch["ppo"]) if isinstance(batch, dict) else len(batch)  # the old version: {kind: [seqs]}
            losses = accumulate(batch, n, 1.0)
            times.append(time.perf_counter() - t0)
    return {"seconds": times[1:], "losses": {k: v for k, v in losses.items() if k.startswith("loss/")}}


def interleaved(old_src: str, methods: list[str], repeats: int, model: str, output: str) -> None:
    """Training phase of the code in ``old_src`` and of this checkout, alternating per method."""
    result = {"machine": cpu_name(), "cores": os.cpu_count(), "matmul_tflops": matmul_flops(n=1024) / 1e12, "methods": {}}
    print(f"{result['machine']}, {result['cores']} cores, fp32 matmul {result['matmul_tflops']:.3f} TFLOP/s")
    print(f"{'method':14} {'before s':>9} {'after s':>9} {'after/before':>13}  losses equal")
    for method in methods:
        row = {}
        for name, src in (("before", old_src), ("after", str(ROOT / "src"))):
            env = {**os.environ, "PYTHONPATH": src}
            proc = subprocess.run([sys.executable, __file__, "--backward-one", method, "--repeats", str(repeats),
                                   "--model", model], capture_output=True, text=True, env=env)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{method} ({name}) failed:\n{proc.stderr[-3000:]}")
            row[name] = json.loads(line[len("RESULT "):])
        b, a = (sorted(row[k]["seconds"])[len(row[k]["seconds"]) // 2] for k in ("before", "after"))
        same = all(abs(row["before"]["losses"][k] - row["after"]["losses"].get(k, float("nan"))) <= 1e-5 * max(1, abs(v))
                   for k, v in row["before"]["losses"].items())
        result["methods"][method] = {**row, "median_before": b, "median_after": a}
        print(f"{method:14} {b:9.2f} {a:9.2f} {a / b:13.3f}  {'yes' if same else 'NO'}", flush=True)
    Path(output).write_text(json.dumps(result, indent=1))
    print(f"wrote {output}")


def compare(before_path: str, after_path: str) -> None:
    before, after = (json.loads(Path(p).read_text()) for p in (before_path, after_path))
    print(f"before: {before['machine']}, matmul {before['matmul_tflops']:.3f} TFLOP/s")
    print(f"after:  {after['machine']}, matmul {after['matmul_tflops']:.3f} TFLOP/s")
    print(f"{'method':14} {'before s/step':>14} {'after s/step':>13} {'after/before':>13}  losses equal")
    for method, b in before["methods"].items():
        a = after["methods"].get(method)
        if a is None:
            continue
        tb, ta = b["mean"]["time/step"], a["mean"]["time/step"]
        same = all(
            all(abs(rb.get(k, 0.0) - ra.get(k, 0.0)) <= 1e-6 * max(1.0, abs(rb.get(k, 0.0)))
                for k in rb if k.startswith(("loss/", "reward/", "tokens/generated")))
            for rb, ra in zip(b["steps"], a["steps"]))
        print(f"{method:14} {tb:14.2f} {ta:13.2f} {ta / tb:13.3f}  {'yes' if same else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(RECIPES))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "step_time.json"))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method, print JSON
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--backward-against", metavar="OLD_SRC",
                    help="time the training phase of OLD_SRC (a src/ directory of another version) and of this "
                         "checkout on the same rollout, alternating per method")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backward-one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.backward_one:
        print("RESULT " + json.dumps(run_backward(args.backward_one, args.repeats, args.model)))
        return
    if args.backward_against:
        return interleaved(args.backward_against, args.methods.split(","), args.repeats, args.model, args.output)
    if args.one:
        print("RESULT " + json.dumps(run_method(args.one, args.steps, args.model)))
        return
    result = {"machine": cpu_name(), "cores": os.cpu_count(), "matmul_tflops": matmul_flops(n=1024) / 1e12, "steps": args.steps,
              "methods": {}}
    print(f"{result['machine']}, {result['cores']} cores, fp32 matmul {result['matmul_tflops']:.3f} TFLOP/s")
    for method in args.methods.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", method, "--steps", str(args.steps),
                               "--model", args.model], capture_output=True, text=True, env=os.environ.copy())
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{method} failed:\n{proc.stderr[-3000:]}")
        result["methods"][method] = json.loads(line[len("RESULT "):])
        mean = result["methods"][method]["mean"]
        print(f"{method:14} " + "  ".join(f"{k[5:]} {v:7.2f} s" for k, v in mean.items()), flush=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
