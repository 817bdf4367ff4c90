"""The GPU check: proves rltf's CUDA path on one GPU in at most ten minutes and prints one table.

    bash tools/gpu_check.sh                         # on the GPU machine (installs .whl/ if carried)
    python benchmarks/gpu_check.py --dry-run        # the same code on CPU, small models (make test)

What it runs, in this order, each row timed and skipped (with the reason) once ``--time-budget``
is spent:

1. The bf16 matmul peak of the device (and fp32 with TF32 off), measured in this run: every
   training FLOP/s below is read against it.
2. Agreement: the tiny model's completion log-probs on CPU in fp32 against the device in fp32 (TF32
   off) and in bf16, on the same batch.
3. One FSDP2 step in a single process (NCCL on CUDA, gloo on CPU) through rltf's own sharding
   (``fully_shard`` per decoder layer, bf16 mixed precision on CUDA), against the same step unsharded.
4. rltf's GRPO, RLTF-SD+FM and span-PPO, a warm-up step and ``--steps`` timed steps each, in bf16
   (``dtype: auto``) on the HF backend, and on vLLM where it is installed, on random-initialised
   models of real architectures and sizes (Qwen2 0.5B and 1.5B, built from a config here: no
   download), and on the tiny model. Generated and trained tokens/s, the training phase's FLOP/s
   (6 x parameters x trained tokens / forward+backward time) against the bf16 peak, peak memory.
5. TRL's GRPOTrainer on the same random model and job (where trl is importable; not in the dry run).

The job: fact_summary prompts (rltf's own task; add2 comes from reasoning-gym, whose dependencies
include C extensions without wheels for every Python), 2 prompts x 8 answers, at most 64 new tokens, temperature 1. A random model
never writes EOS, so every answer is 64 tokens and every step the same size; its rewards are the
answer's length parity (mixed, so every group trains) and its span critic labels each answer's first
characters (so span-PPO has spans). The numbers measure the machinery, not learning.

The dry run (CPU, what ``make test`` runs so that this keeps working between GPU runs): the same
rows on the tiny model, GRPO on a two-layer Qwen2 with the full vocabulary (``qwen2-mini``), 16 new
tokens, one timed step, no vLLM or TRL rows; agreement compares the CPU with itself.

The machine needs torch (>= 2.11), transformers (>= 5.17), accelerate and peft; ``tools/gpu_wheels.sh``
fetches the rest (rltf's few pure-Python needs, TRL and datasets: about 6 MB) into ``.whl/`` here.
Writes ``--output`` (JSON) with every figure.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import platform
import resource
import shutil
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "src" / "rltf").is_dir():
    sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing it

import torch  # noqa: E402

# real architectures at real sizes, random weights (Qwen2-0.5B and Qwen2-1.5B's shapes)
QWEN2 = {
    "qwen2-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2),
    "qwen2-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2),
    # the dry run's: the same architecture and vocabulary, two small layers (exercises the same path)
    "qwen2-mini": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1),
}
VOCAB = 151_936
METHODS = ("grpo", "rltf-sd+fm", "span-ppo")
PROMPTS, GENERATIONS, MAX_NEW = 2, 8, 64
TASK = "fact_summary"  # rltf's own task: add2 would need reasoning-gym and its C-extension dependencies there


@dataclasses.dataclass
class Row:
    check: str
    model: str = ""
    backend: str = ""
    status: str = "ok"
    seconds: float = 0.0
    figures: dict = dataclasses.field(default_factory=dict)


# -- the machine ----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "accelerate", "peft", "vllm", "trl"):
        try:
            out[name] = __import__(name).__version__
        except Exception as err:  # noqa: BLE001 - an absent or broken package is reported, not fatal
            out[name] = f"absent ({type(err).__name__})"
    return out


def device_name(device: str) -> str:
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, driver CUDA {torch.version.cuda}"
    from rltf.models.precision import has_native_bf16

    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, native bf16: {has_native_bf16()}"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int, reps: int = 10) -> float:
    """Mean TFLOP/s of ``reps`` n x n x n matmuls after three warm-ups."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def peak_memory_gb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # the process's, since it began


def reset_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# -- models -------------------------------------------------------------------------------------
def write_random_model(name: str, directory: Path, device: str) -> Path:
    """A random-initialised Qwen2 of ``name``'s shape with a tokenizer of its full vocabulary (the
    tiny byte-level BPE plus placeholder tokens), saved where ``rltf`` loads local models from."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rltf.models.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_tokens([f"<r{i}>" for i in range(VOCAB - len(tok))])
    config = Qwen2Config(vocab_size=VOCAB, max_position_embeddings=4096, tie_word_embeddings=True, rope_theta=1e6,
                         rms_norm_eps=1e-6, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=None, **QWEN2[name])
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    del model
    reset_memory(device)
    return directory


# -- 2. agreement -------------------------------------------------------------------------------
def agreement(device: str) -> Row:
    """Completion log-probs of the tiny model: CPU fp32 against the device in fp32 and bf16."""
    from rltf.engine.forward import completion_logprobs
    from rltf.models import load_model_and_tokenizer
    from rltf.rollout import RolloutBatch

    model, tok = load_model_and_tokenizer("tiny-random", dtype="float32", device="cpu", seed=0)
    texts = ["What is 12 + 35?", "Check the carry in the tens digit.", "def add(a, b):", "The quick brown fox"]
    answers = ["The answer is \\boxed{47}.", "Your previous attempt", "    return a + b", "jumps over the dog."]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    comp = [tok(a, add_special_tokens=False)["input_ids"] for a in answers]

    def logp(m, dev):
        batch = RolloutBatch.from_sequences(ids, comp, kind=["rl"] * 4, turn=[0] * 4, group=list(range(4)),
                                            pad_id=tok.pad_token_id).to(dev)
        with torch.no_grad():
            return completion_logprobs(m, batch, shared_prefix=False).float().cpu(), batch.completion_mask.cpu()

    ref, mask = logp(model, "cpu")
    figures = {}
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    for dtype, limit in ((torch.float32, 1e-3), (torch.bfloat16, 0.15)):
        m = copy.deepcopy(model).to(device=device, dtype=dtype)
        got, _ = logp(m, device)
        diff = (got - ref).abs()[mask.bool()]
        key = str(dtype).removeprefix("torch.")
        figures[f"{key}_max_abs_diff"] = float(diff.max())
        figures[f"{key}_mean_abs_diff"] = float(diff.mean())
        figures[f"{key}_limit"] = limit
    ok = figures["float32_max_abs_diff"] <= 1e-3 and figures["bfloat16_max_abs_diff"] <= 0.15
    where = "cuda" if device == "cuda" else "cpu (dry run: the same device)"
    return Row("log-prob agreement", "tiny-random", where, "ok" if ok else "MISMATCH", figures=figures)


# -- 3. FSDP2 -----------------------------------------------------------------------------------
def fsdp_step(device: str) -> Row:
    """One AdamW step of the tiny model sharded with rltf's FSDP2 plan in a one-process group,
    against the same step unsharded."""
    import torch.distributed as dist

    from rltf.engine.forward import completion_logprobs
    from rltf.engine.sharding import FSDPPlan, shard_model
    from rltf.models import load_model_and_tokenizer
    from rltf.rollout import RolloutBatch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=0, world_size=1,
                            device_id=torch.device("cuda", 0) if device == "cuda" else None)
    try:
        model, tok = load_model_and_tokenizer("tiny-random", dtype="float32", device=device, seed=0)
        plain = copy.deepcopy(model)
        shard_model(model, FSDPPlan(bf16=device == "cuda"))
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in ("What is 12 + 35?", "Check the carry.")]
        comp = [tok(t, add_special_tokens=False)["input_ids"] for t in ("\\boxed{47}", "in the tens digit")]
        batch = RolloutBatch.from_sequences(ids, comp, kind=["rl"] * 2, turn=[0] * 2, group=[0, 1],
                                            pad_id=tok.pad_token_id).to(device)
        losses = []
        for m in (model, plain):
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
            mask = batch.completion_mask.float()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda" and m is plain):
                loss = -(completion_logprobs(m, batch, shared_prefix=False) * mask).sum() / mask.sum()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sharded = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().float().cpu()
                   for k, v in model.state_dict().items()}
        diff = max(float((sharded[k] - v.detach().float().cpu()).abs().max()) for k, v in plain.state_dict().items())
        moved = max(float((sharded[k] - v.float()).abs().max()) for k, v in
                    load_model_and_tokenizer("tiny-random", dtype="float32", device="cpu", seed=0)[0].state_dict().items())
    finally:
        dist.destroy_process_group()
    finite = all(torch.isfinite(torch.tensor(x)) for x in losses)
    ok = finite and moved > 0 and diff < 5e-3
    return Row("FSDP2 step, 1 process", "tiny-random", "nccl" if device == "cuda" else "gloo",
               "ok" if ok else "MISMATCH", figures={"loss_sharded": losses[0], "loss_unsharded": losses[1],
                                                     "max_weight_diff_vs_unsharded": diff, "max_weight_change": moved})


# -- 4. rltf -------------------------------------------------------------------------------------
def parity_grader(problem, completion):
    from rltf.tasks.base import Score

    good = len(completion) % 2 == 0
    return Score(1.0 if good else 0.0, good, True, "parity", None)


def first_chars_critic():
    from rltf.feedback.base import Critique, FeedbackProvider, Span

    class FirstChars(FeedbackProvider):
        """Labels each answer's first 8 characters: positive when the answer's length is even."""

        name = "first-chars"

        def critique(self, task, problem, answer, score):
            self.stats.count(None)
            quote = answer[:8]
            if not quote.strip():
                return Critique("Nothing to say.", [], self.name)
            return Critique("About the start.", [Span(quote, "positive" if len(answer) % 2 == 0 else "negative", 0)],
                            self.name)

    return FirstChars()


def run_rltf(method: str, model: str, backend: str, device: str, steps: int, bf16_peak: float,
             out_dir: Path, max_new: int = MAX_NEW) -> Row:
    from rltf.methods import build_trainer, make_config

    reset_memory(device)
    overrides = dict(model=model, task=TASK, backend=backend, device=device, dtype="auto",
                     prompts_per_step=PROMPTS, max_new_tokens=max_new, temperature=1.0, learning_rate=1e-6,
                     eval_at_start=False, eval_every=0, save_every=0, output_dir=str(out_dir / f"{method}-{backend}"),
                     micro_batch_size=16, max_steps=steps + 1)
    if method == "span-ppo":
        overrides.update(group_size=GENERATIONS, mini_batch_size=PROMPTS * GENERATIONS, ppo_epochs=1, top_p=1.0)
    else:
        overrides.update(group_size=GENERATIONS, feedback="critic", generation_batch_size=64)
    lines = []
    t0 = time.perf_counter()
    trainer = build_trainer(make_config(method, overrides=overrides), console=lines.append)
    trainer.task.grade = parity_grader
    if method == "span-ppo":
        trainer.feedback = first_chars_critic()
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in trainer.model.parameters())
    timed = []
    for i in range(steps + 1):
        m = trainer.train_step()
        if i:
            timed.append(m)
    mean = {k: sum(m.get(k, 0.0) for m in timed) / len(timed) for k in
            ("time/step", "time/generate", "time/backward", "time/optimizer", "tokens/generated", "tokens/trained")}
    fb = mean["time/backward"]
    flops = 6 * n_params * mean["tokens/trained"] / fb if fb > 0 else 0.0
    figures = {"params": n_params, "load_s": load_s, "s_per_step": mean["time/step"],
               "generate_s": mean["time/generate"], "forward_backward_s": fb, "optimizer_s": mean["time/optimizer"],
               "generated_tokens_per_step": mean["tokens/generated"], "trained_tokens_per_step": mean["tokens/trained"],
               "generated_tokens_per_s": mean["tokens/generated"] / mean["time/step"],
               "trained_tokens_per_s": mean["tokens/trained"] / fb if fb > 0 else 0.0,
               "train_tflops": flops / 1e12, "train_fraction_of_bf16_peak": flops / 1e12 / bf16_peak if bf16_peak else 0.0,
               "peak_memory_gb": peak_memory_gb(device), "precision": trainer.precision.label,
               "precision_reason": trainer.precision.reason}
    close = getattr(trainer.backend, "close", None)
    if close:
        close()
    del trainer
    reset_memory(device)
    ok = mean["tokens/generated"] > 0 and mean["tokens/trained"] > 0
    return Row(method, Path(model).name, backend, "ok" if ok else "NOTHING TRAINED", figures=figures)


# -- 5. TRL ----------------------------------------------------------------------------------------
def run_trl(model_dir: Path, device: str, steps: int, bf16_peak: float) -> Row:
    sys.path.insert(0, str(Path(__file__).parent))
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from train_throughput import timed_trl_steps

    from rltf.tasks import get_task

    reset_memory(device)
    task = get_task(TASK)
    problems = task.problems("train", 64, seed=0)
    data = Dataset.from_list([{"prompt": task.messages(p)} for p in problems])
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device)

    def reward(completions, **kw):
        return [float(len(c[-1]["content"] if isinstance(c, list) else c) % 2 == 0) for c in completions]

    config = GRPOConfig(output_dir=str(model_dir.parent / "trl-output"), per_device_train_batch_size=PROMPTS * GENERATIONS,
                        num_generations=GENERATIONS, max_completion_length=MAX_NEW, temperature=1.0,
                        learning_rate=1e-6, beta=0.0, max_steps=steps + 1, logging_steps=1, report_to="none",
                        save_strategy="no", bf16=True, seed=0, dataloader_num_workers=0, use_cpu=device == "cpu")
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=data, processing_class=tok)
    timed = timed_trl_steps(trainer, "_generate_and_score_completions")[1:]
    n_params = sum(p.numel() for p in model.parameters())
    mean = {k: sum(s[k] for s in timed) / len(timed) for k in timed[0]}
    fb = mean["forward_backward"]
    flops = 6 * n_params * mean["trained_tokens"] / fb if fb > 0 else 0.0
    figures = {"params": n_params, "s_per_step": mean["step"], "generate_s": mean["generate"],
               "forward_backward_s": fb, "optimizer_s": mean["optimizer"],
               "generated_tokens_per_step": mean["generated_tokens"], "trained_tokens_per_step": mean["trained_tokens"],
               "generated_tokens_per_s": mean["generated_tokens"] / mean["step"],
               "trained_tokens_per_s": mean["trained_tokens"] / fb if fb > 0 else 0.0,
               "train_tflops": flops / 1e12, "train_fraction_of_bf16_peak": flops / 1e12 / bf16_peak if bf16_peak else 0.0,
               "peak_memory_gb": peak_memory_gb(device), "precision": "bf16 weights (GRPOConfig bf16=True)"}
    del trainer, model
    reset_memory(device)
    return Row("TRL GRPOTrainer", model_dir.name, "hf", figures=figures)


# -- the table -------------------------------------------------------------------------------------
def fmt(x, spec=".1f") -> str:
    return "" if x is None else format(x, spec)


def table(rows: list[Row]) -> str:
    head = ("| check | model | backend | status | s/step | gen. tokens/s | trained tokens/s | train TFLOP/s "
            "(% bf16 peak) | peak mem GB | notes |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        f = r.figures
        if "s_per_step" in f:
            cells = [fmt(f["s_per_step"], ".2f"), fmt(f["generated_tokens_per_s"]), fmt(f["trained_tokens_per_s"]),
                     f"{f['train_tflops']:.2f} ({f['train_fraction_of_bf16_peak']:.0%})", fmt(f["peak_memory_gb"], ".2f"),
                     f.get("precision", "")]
        else:
            notes = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in f.items())
            cells = ["", "", "", "", "", notes]
        lines.append("| " + " | ".join([r.check, r.model, r.backend, r.status, *cells]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, small models only, no TRL row (what make test runs)")
    ap.add_argument("--sizes", default=None, help="comma-separated: tiny, qwen2-mini, qwen2-0.5b, qwen2-1.5b "
                                                  "(default: all but qwen2-mini on CUDA; tiny and qwen2-mini dry)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per run after one warm-up (default 3; 1 dry)")
    ap.add_argument("--time-budget", type=float, default=540.0, help="seconds; rows after it are skipped, not run")
    ap.add_argument("--no-vllm", action="store_true", help="skip the vLLM rows even where vLLM is installed")
    ap.add_argument("--output", default="gpu_check.json", help="JSON with every figure")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print("gpu_check: no CUDA device here; run with --dry-run for the CPU dry run", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    sizes = (args.sizes or ("tiny,qwen2-0.5b,qwen2-1.5b" if cuda else "tiny,qwen2-mini")).split(",")
    steps = args.steps or (3 if cuda else 1)
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": device_name(device), "versions": versions(),
            "dry_run": args.dry_run}
    n = 8192 if cuda else 512
    peaks = {"bfloat16": matmul_peak(device, torch.bfloat16, n)}
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    peaks["float32"] = matmul_peak(device, torch.float32, n // 2 if cuda else n)
    info["matmul_tflops"] = {**peaks, "n": n}
    print(f"gpu_check {'(CPU dry run) ' if args.dry_run else ''}{info['date']}: {info['device']}", flush=True)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), flush=True)
    print(f"matmul peak ({n}^3, this run): bf16 {peaks['bfloat16']:.3g} TFLOP/s, fp32 (TF32 off) "
          f"{peaks['float32']:.3g} TFLOP/s", flush=True)

    rows: list[Row] = []
    vllm = not args.no_vllm and cuda and not info["versions"]["vllm"].startswith("absent")
    trl = cuda and not info["versions"]["trl"].startswith("absent")
    work = [("agreement", lambda: agreement(device)), ("fsdp", lambda: fsdp_step(device))]
    scratch = Path(tempfile.mkdtemp(prefix="rltf-gpu-check-"))  # the random models' weights; removed at the end
    model_dirs: dict[str, str] = {}
    try:
        def model_for(size: str) -> str:
            if size not in model_dirs:
                model_dirs[size] = "tiny-random" if size == "tiny" else str(
                    write_random_model(size, scratch / size, device))
            return model_dirs[size]

        max_new = MAX_NEW if cuda else 16  # the dry run keeps its answers short: it proves the code, not the speed
        for size in sizes:
            # the dry run trains its full-vocabulary Qwen2 with GRPO only (its LM head is slow on a CPU)
            for method in METHODS if cuda or size == "tiny" else METHODS[:1]:
                work.append((f"{method} {size} hf", lambda s=size, m=method: run_rltf(
                    m, model_for(s), "hf", device, steps, peaks["bfloat16"], scratch, max_new)))
            if vllm:
                work.append((f"grpo {size} vllm", lambda s=size: run_rltf(
                    "grpo", model_for(s), "vllm", device, steps, peaks["bfloat16"], scratch)))
                work.append((f"rltf-sd+fm {size} vllm", lambda s=size: run_rltf(
                    "rltf-sd+fm", model_for(s), "vllm", device, steps, peaks["bfloat16"], scratch)))
            if trl and size != "tiny":
                work.append((f"trl {size}", lambda s=size: run_trl(Path(model_for(s)), device, steps, peaks["bfloat16"])))
        for label, job in work:
            name, *rest = label.split(" ")
            if time.perf_counter() - start > args.time_budget:
                rows.append(Row(name, *(rest + ["", ""])[:2], status="skipped: time budget spent"))
                continue
            t0 = time.perf_counter()
            try:
                row = job()
            except Exception as err:  # noqa: BLE001 - every failure is a row of the table, and the run goes on
                traceback.print_exc()
                row = Row(name, *(rest + ["", ""])[:2], status=f"FAILED: {type(err).__name__}: {str(err)[:160]}")
            row.seconds = time.perf_counter() - t0
            rows.append(row)
            print(f"  {label}: {row.status} ({row.seconds:.0f} s)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n" + table(rows))
    failed = [r for r in rows if not (r.status == "ok" or r.status.startswith("skipped"))]
    total = time.perf_counter() - start
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows ok or skipped; {total:.0f} s in all")
    Path(args.output).write_text(json.dumps({**info, "seconds": total, "rows": [dataclasses.asdict(r) for r in rows]},
                                            indent=1))
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
