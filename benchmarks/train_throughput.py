"""Training throughput of single-turn GRPO: rltf vs TRL's GRPOTrainer on the same job (not a test);
with ``--job sdpo``, of SDPO: rltf's ``sdpo`` vs TRL's experimental SDPOTrainer.

    pip install -e '.[bench]'            # trl==1.16.0
    python benchmarks/train_throughput.py [--steps 3] [--dtype float32] [--bf16-autocast]
    python benchmarks/train_throughput.py --job sdpo

The SDPO job: the same prompts and batch, sampled-token reverse KL, an EMA teacher (rate 0.05),
pure self-distillation, importance-weight cap 2 (both libraries' defaults). The teacher is shown a
successful sibling answer and feedback on the failed one: rltf's critic writes a critique of each
wrong answer; TRL reads feedback from the dataset (``privileged_context``, static per prompt), so
each prompt carries the critic's critique of a fixed wrong answer to it, of the same kind and length.

The job (the same for both): SmolLM2-135M-Instruct (embedded default), few-shot 2-digit addition
(add2), 2 prompts x 8 generations per step, at most 64 new tokens, temperature 1, full fine-tuning,
AdamW, no KL term, one optimizer step per rollout. Each framework runs in its own subprocess (so
peak resident memory is its own); one warm-up step is not timed. rltf runs with each generation
backend (``grpo`` = HF, ``grpo@vllm`` = vLLM with weights synced every step), TRL in its plain
configuration and in the two a TRL user turns on for speed (``trl@vllm``: vLLM colocated in the
trainer's process; ``trl@cb``: transformers' continuous batching); a configuration that fails is a
row with its error, and the headline ratio is against TRL's fastest configuration that runs. Also measured: a
two-turn RLTF-FM step of rltf on the same prompts (the multi-turn cost), and the machine's fp32
matmul FLOP/s, against which the training phase's achieved FLOP/s (6 x parameters x trained tokens
/ time) is reported (bf16 is probed only where the CPU has native bf16).

Prints one table and writes ``--output`` (JSON) with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, matmul_flops, native_bf16  # noqa: E402

PROMPTS, GENERATIONS, MAX_NEW = 2, 8, 64


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux -> GB


# -- rltf ---------------------------------------------------------------------------------------
def run_rltf(args, run: str) -> dict:
    from rltf.methods import build_trainer, make_config

    method, _, backend = run.partition("@")  # e.g. grpo@vllm
    cfg = make_config(method, overrides=dict(backend=backend or "hf",
        model=args.model, task="add2", prompts_per_step=PROMPTS, group_size=GENERATIONS, max_new_tokens=MAX_NEW,
        temperature=1.0, learning_rate=1e-6, dtype=args.dtype, bf16_autocast=args.bf16_autocast,
        generation_batch_size=64, eval_at_start=False, output_dir="/tmp/rltf-bench",
        feedback="critic", micro_batch_size=args.micro_batch_size, micro_batch_order=args.micro_batch_order,
        **({"micro_batch_tokens": args.micro_batch_tokens} if args.micro_batch_tokens is not None else {})))
    trainer = build_trainer(cfg, console=lambda s: None)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    steps = []
    for i in range(args.steps + 1):
        m = trainer.train_step()
        if i == 0:
            continue  # warm-up
        trained = m.get("tokens/trained", 0.0)
        steps.append({"step": m["time/step"], "generate": m["time/generate"], "weight_sync": m.get("time/weight_sync", 0.0),
                      "score": m["time/rollout"] - m["time/generate"], "forward_backward": m["time/backward"],
                      "optimizer": m["time/optimizer"], "generated_tokens": m["tokens/generated"],
                      "trained_tokens": trained, **({"teacher_active": m["sd/distilled_fraction"]}
                                                    if "sd/distilled_fraction" in m else {})})
    return summarize(steps, n_params)


# -- TRL ----------------------------------------------------------------------------------------
def _add2_reward(task, problems):
    """TRL's reward function for add2: the task's own score of each completion."""
    by_question = {task.format_question(p): p for p in problems}

    def reward(completions, question, **kw):
        out = []
        for c, q in zip(completions, question):
            text = c[-1]["content"] if isinstance(c, list) else c
            out.append(task.score(by_question[q], text).reward)
        return out
    return reward


def timed_trl_steps(trainer, rollout: str) -> list[dict]:
    """Train ``trainer`` (a TRL trainer) with its generation, scoring and ``rollout`` method timed;
    -> one dict per step (forward+backward = the step less the rollout and the optimizer)."""
    import torch
    from transformers import TrainerCallback

    phase = {"generate": 0.0, "score": 0.0, "rollout": 0.0, "optimizer": 0.0, "tokens": 0.0, "trained": 0.0}

    def timed(name, fn, count=None):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            phase[name] += time.perf_counter() - t0
            if count:
                count(out)
            return out
        return wrapper

    def count_tokens(out):  # the policy's sequences (an SDPO teacher's forward is not counted as trained)
        phase["tokens"] += float(out["completion_mask"].sum())
        phase["trained"] += float(out["completion_mask"].numel() + out["prompt_mask"].numel())

    trainer._generate = timed("generate", trainer._generate)
    trainer._calculate_rewards = timed("score", trainer._calculate_rewards)
    setattr(trainer, rollout, timed("rollout", getattr(trainer, rollout), count_tokens))
    steps = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            for key in phase:
                phase[key] = 0.0
            self.t0 = time.perf_counter()

        def on_pre_optimizer_step(self, *a, **k):
            self.t_opt = time.perf_counter()

        def on_optimizer_step(self, *a, **k):
            phase["optimizer"] += time.perf_counter() - self.t_opt

        def on_step_end(self, *a, **k):
            total = time.perf_counter() - self.t0
            steps.append({"step": total, "generate": phase["generate"], "score": phase["score"],
                          "forward_backward": total - phase["rollout"] - phase["optimizer"],
                          "optimizer": phase["optimizer"], "generated_tokens": phase["tokens"],
                          "trained_tokens": phase["trained"], "rollout_other": phase["rollout"] - phase["generate"]
                          - phase["score"]})

    trainer.add_callback(Clock())
    torch.manual_seed(0)
    trainer.train()
    return steps


# TRL's configurations a user who wants speed turns on (``trl@MODE``): vLLM colocated in the
# trainer's process, or transformers' continuous batching for generation
TRL_MODES = {"vllm": dict(use_vllm=True, vllm_mode="colocate", vllm_enable_sleep_mode=False),
             "cb": dict(use_transformers_continuous_batching=True)}


def run_trl(args, mode: str | None = None) -> dict:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rltf.models import load_model_and_tokenizer
    from rltf.tasks import get_task

    task = get_task("add2")
    problems = task.problems("train", 64, seed=0)
    data = Dataset.from_list([{"prompt": task.messages(p), "question": task.format_question(p)} for p in problems])
    model, tok = load_model_and_tokenizer(args.model, dtype=args.dtype)
    tok.padding_side = "left"
    config = GRPOConfig(output_dir="/tmp/trl-bench", per_device_train_batch_size=PROMPTS * GENERATIONS,
                        num_generations=GENERATIONS, max_completion_length=MAX_NEW, temperature=1.0,
                        learning_rate=1e-6, beta=0.0, max_steps=args.steps + 1, logging_steps=1, report_to="none",
                        save_strategy="no", use_cpu=True, bf16=args.bf16_autocast, seed=0, dataloader_num_workers=0,
                        **TRL_MODES.get(mode, {}))
    trainer = GRPOTrainer(model=model, reward_funcs=[_add2_reward(task, problems)], args=config, train_dataset=data,
                          processing_class=tok)
    steps = timed_trl_steps(trainer, "_generate_and_score_completions")
    n_params = sum(p.numel() for p in model.parameters())
    return summarize(steps[1:], n_params)


def run_trl_sdpo(args) -> dict:
    from datasets import Dataset
    from trl.experimental.sdpo import SDPOConfig, SDPOTrainer

    from rltf.feedback import build_feedback
    from rltf.models import load_model_and_tokenizer
    from rltf.tasks import get_task

    task = get_task("add2")
    problems = task.problems("train", 64, seed=0)
    critic = build_feedback("critic")
    # a wrong answer to each problem in the model's format, e.g. "5 + 33 = 48. \boxed{48}"
    wrong = [f"{p.metadata['expression']} = {int(p.answer) + 10}. \\boxed{{{int(p.answer) + 10}}}" for p in problems]
    critiques = critic.critique_many([(task, p, w, task.score(p, w)) for p, w in zip(problems, wrong)])
    data = Dataset.from_list([{"prompt": task.messages(p), "question": task.format_question(p), "privileged_context": c.text}
                              for p, c in zip(problems, critiques)])
    # TRL builds its EMA teacher by loading the student's name_or_path again: give it a local copy
    model, tok = load_model_and_tokenizer(args.model, dtype=args.dtype)
    local = Path("/tmp/trl-bench-sdpo-model")
    model.save_pretrained(local)
    tok.save_pretrained(local)
    model = type(model).from_pretrained(local, dtype=model.dtype)
    tok.padding_side = "left"
    config = SDPOConfig(output_dir="/tmp/trl-bench-sdpo", per_device_train_batch_size=PROMPTS * GENERATIONS,
                        num_generations=GENERATIONS, max_completion_length=MAX_NEW, temperature=1.0,
                        learning_rate=1e-6, beta=0.0, max_steps=args.steps + 1, logging_steps=1, report_to="none",
                        save_strategy="no", use_cpu=True, bf16=args.bf16_autocast, seed=0, dataloader_num_workers=0,
                        distillation_mode="sampled_token", distillation_alpha=1.0, distillation_weight=1.0,
                        teacher_model_kind="ema", teacher_update_rate=0.05, distillation_is_clip=2.0,
                        use_successful_as_teacher=True, include_environment_feedback=True)
    trainer = SDPOTrainer(model=model, reward_funcs=[_add2_reward(task, problems)], args=config, train_dataset=data,
                          processing_class=tok)
    steps = timed_trl_steps(trainer, "_prepare_training_batch")
    # the share of samples whose teacher had a context (a demonstration or feedback), per logged step
    active = [h["self_distillation/reprompt_sample_fraction"] for h in trainer.state.log_history
              if "self_distillation/reprompt_sample_fraction" in h]
    for s, a in zip(steps, active):
        s["teacher_active"] = a
    n_params = sum(p.numel() for p in model.parameters())
    return summarize(steps[1:], n_params)


def summarize(steps: list[dict], n_params: int) -> dict:
    mean = {k: sum(s.get(k, 0.0) for s in steps) / len(steps) for k in steps[0]}
    fb = mean["forward_backward"]
    return {"steps": steps, "mean": mean, "params": n_params, "peak_rss_gb": peak_rss_gb(),
            "generated_tokens_per_s": mean["generated_tokens"] / mean["step"],
            "train_flops_per_s": 6 * n_params * mean["trained_tokens"] / fb if fb > 0 else 0.0}


def last_error(stderr: str) -> str:
    """The line of a failed run's stderr that names the error (the last ``SomethingError: ...``)."""
    lines = [re.sub(r"^\[rank\d+\]:\s*", "", x).strip() for x in stderr.splitlines()]
    lines = [x for x in lines if x]
    named = [x for x in lines if re.match(r"^[\w.]*(Error|Exception)\b", x)]
    return (named or lines or ["no output"])[-1][:300]


# -- driver -------------------------------------------------------------------------------------
def child(args) -> None:
    import torch

    torch.manual_seed(0)
    runs = {"trl": run_trl, "trl-sdpo": run_trl_sdpo,
            **{f"trl@{mode}": (lambda a, m=mode: run_trl(a, m)) for mode in TRL_MODES}}
    out = runs[args.framework](args) if args.framework in runs else run_rltf(args, args.framework)
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--bf16-autocast", action="store_true", help="bf16 autocast in both frameworks")
    ap.add_argument("--job", choices=("grpo", "sdpo"), default="grpo", help="the job's default runs and output")
    ap.add_argument("--frameworks", default=None,
                    help="which runs: trl (GRPOTrainer), trl@vllm (with vLLM colocated), trl@cb (with transformers' "
                         "continuous batching), trl-sdpo (SDPOTrainer), or an rltf method (grpo, rltf-fm, "
                         "sdpo) with @vllm for the vLLM backend; default: the job's")
    ap.add_argument("--micro-batch-size", type=int, default=16, help="rltf: sequences per forward/backward")
    ap.add_argument("--micro-batch-tokens", type=int, default=None,
                    help="rltf: token positions per forward/backward (default: the config's default)")
    ap.add_argument("--micro-batch-order", choices=("planned", "collected"), default="planned",
                    help="rltf: micro-batches as planned (fewest positions) or in collection order (before 2026-12-04)")
    ap.add_argument("--output", default=None, help="default: benchmarks/train_throughput[_sdpo].json")
    ap.add_argument("--framework", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.framework:
        return child(args)
    sdpo = args.job == "sdpo"
    args.frameworks = args.frameworks or ("trl-sdpo,sdpo,sdpo@vllm" if sdpo else "trl,trl@vllm,trl@cb,grpo,grpo@vllm,rltf-fm,rltf-fm@vllm")
    args.output = args.output or f"benchmarks/train_throughput{'_sdpo' if sdpo else ''}.json"
    results = {}
    for fw in args.frameworks.split(","):
        cmd = [sys.executable, __file__, "--framework", fw, "--model", args.model, "--steps", str(args.steps),
               "--dtype", args.dtype, "--micro-batch-size", str(args.micro_batch_size)]
        cmd += ["--micro-batch-tokens", str(args.micro_batch_tokens)] if args.micro_batch_tokens is not None else []
        cmd += ["--micro-batch-order", args.micro_batch_order]
        cmd += ["--bf16-autocast"] if args.bf16_autocast else []
        print(f"running {fw} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:  # recorded with its error (e.g. TRL's vLLM colocate on the CPU build of vLLM)
            print(f"{fw} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            results[fw] = {"failed": last_error(proc.stderr)}
            continue
        results[fw] = json.loads(line[7:])
        print(f"{fw}: {json.dumps(results[fw]['mean'])}", file=sys.stderr, flush=True)
    peak = {"float32": matmul_flops("float32")}
    if native_bf16():
        peak["bfloat16"] = matmul_flops("bfloat16")
        bf16_text = f"bf16 {peak['bfloat16'] / 1e12:.2f} TFLOP/s"
    else:
        bf16_text = "bf16 not measured (no native bf16 on this CPU: AVX512-BF16/AMX absent)"
    run_dtype = "bfloat16" if args.bf16_autocast else args.dtype
    print(f"\nmachine: {cpu_name()}, {os.cpu_count()} cores; matmul 2048^2: "
          f"fp32 {peak['float32'] / 1e12:.2f} TFLOP/s, {bf16_text}")
    print(f"job: {args.job.upper()}, {args.model} ({args.dtype}{', bf16 autocast' if args.bf16_autocast else ''}), "
          f"{PROMPTS} prompts x {GENERATIONS} generations, <= {MAX_NEW} new tokens, {args.steps} timed steps; "
          f"rltf micro-batches: {args.micro_batch_size} rows, {args.micro_batch_order}"
          f"{f', <= {args.micro_batch_tokens} positions' if args.micro_batch_tokens else ''}\n")
    head = ("| run | s/step | generate | weight sync | score | fwd+bwd | optimizer | gen. tokens/step | gen. tokens/s "
            "| peak RSS GB | train TFLOP/s (% of peak) |")
    print(head + "\n|" + "---|" * 11)
    for fw, r in results.items():
        if "failed" in r:
            print(f"| {fw} | failed: {r['failed']} |" + " |" * 9)
            continue
        m = r["mean"]
        frac = r["train_flops_per_s"] / peak[run_dtype] if run_dtype in peak else float("nan")
        print(f"| {fw} | {m['step']:.1f} | {m['generate']:.1f} | {m.get('weight_sync', 0.0):.2f} | {m['score']:.2f} | "
              f"{m['forward_backward']:.1f} | {m['optimizer']:.2f} | {m['generated_tokens']:.0f} | "
              f"{r['generated_tokens_per_s']:.1f} | {r['peak_rss_gb']:.2f} | {r['train_flops_per_s'] / 1e12:.3f} "
              f"({frac:.0%}) |")
    active = {fw: r["mean"]["teacher_active"] for fw, r in results.items()
              if "failed" not in r and "teacher_active" in r["mean"]}
    if active:  # an SDPO step whose teacher had no context distils nothing: its time would mislead
        print("\nsamples whose teacher had a context (mean over the timed steps): "
              + ", ".join(f"{fw} {a:.0%}" for fw, a in active.items()))
    ratios = {}
    results_ok = {fw: r for fw, r in results.items() if "failed" not in r}
    trl_runs = {fw: r for fw, r in results_ok.items() if fw == "trl" or fw.startswith("trl@")}
    if trl_runs:  # the headline: against TRL's fastest configuration that runs, and its lowest memory
        fastest = max(trl_runs, key=lambda fw: trl_runs[fw]["generated_tokens_per_s"])
        leanest = min(trl_runs, key=lambda fw: trl_runs[fw]["peak_rss_gb"])
        for run in ("grpo", "grpo@vllm"):
            if run in results_ok:
                key = run.replace("@", "_")
                ratios[f"{key}_tokens_per_s_over_trl_fastest"] = (results_ok[run]["generated_tokens_per_s"]
                                                                  / trl_runs[fastest]["generated_tokens_per_s"])
                ratios[f"{key}_peak_rss_over_trl_lowest"] = results_ok[run]["peak_rss_gb"] / trl_runs[leanest]["peak_rss_gb"]
                print(f"\nrltf {run} vs TRL's fastest working configuration ({fastest}): generated tokens/s "
                      f"x{ratios[f'{key}_tokens_per_s_over_trl_fastest']:.2f} (goal >= 5); peak RSS vs TRL's lowest "
                      f"({leanest}) x{ratios[f'{key}_peak_rss_over_trl_lowest']:.2f} (goal <= 0.8)")
    results = results_ok
    for run, ref, trainer_name in (("grpo", "trl", "GRPOTrainer"), ("grpo@vllm", "trl", "GRPOTrainer"),
                                   ("sdpo", "trl-sdpo", "SDPOTrainer"), ("sdpo@vllm", "trl-sdpo", "SDPOTrainer")):
        if ref in results and run in results:
            t, g = results[ref], results[run]
            key = run.replace("@", "_")
            ratios[f"{key}_tokens_per_s_over_trl"] = g["generated_tokens_per_s"] / t["generated_tokens_per_s"]
            ratios[f"{key}_peak_rss_over_trl"] = g["peak_rss_gb"] / t["peak_rss_gb"]
            ratios[f"{key}_step_time_over_trl"] = g["mean"]["step"] / t["mean"]["step"]
            print(f"\nrltf {run} vs TRL {trainer_name}: generated tokens/s x{ratios[f'{key}_tokens_per_s_over_trl']:.2f}, "
                  f"peak RSS x{ratios[f'{key}_peak_rss_over_trl']:.2f}, time per step "
                  f"x{ratios[f'{key}_step_time_over_trl']:.2f}")
    for method in ("grpo", "rltf-fm", "sdpo"):
        if method in results and f"{method}@vllm" in results:
            key = f"{method}_vllm_over_hf_tokens_per_s"
            ratios[key] = results[f"{method}@vllm"]["generated_tokens_per_s"] / results[method]["generated_tokens_per_s"]
            print(f"rltf {method}, vLLM backend vs HF backend: generated tokens/s x{ratios[key]:.2f}")
    if "rltf-fm" in results and "grpo" in results:
        ratios["two_turn_over_single_turn_tokens_per_s"] = (results["rltf-fm"]["generated_tokens_per_s"]
                                                           / results["grpo"]["generated_tokens_per_s"])
        print(f"two-turn RLTF-FM step vs single-turn GRPO step, generated tokens/s: "
              f"x{ratios['two_turn_over_single_turn_tokens_per_s']:.2f}")
    with open(args.output, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "machine": cpu_name(), "cores": os.cpu_count(),
                   "matmul_flops": peak, "args": vars(args), "results": results, "ratios": ratios}, f, indent=1)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
