"""Data-parallel training: 2 processes (accelerate launch, gloo on CPU) against 1 process on the same
global batch, FSDP2 and DeepSpeed ZeRO against 1 process, stop/resume under 2 processes, one checkpoint.
The pieces tested in one process (launch checks, sharding, judge concurrency, the reply cache under
concurrent writers) are in test_distributed_pieces.py.

Tolerance of the 2-vs-1 comparison, and why it is not 0: both runs sample the SAME tokens (each
prompt has its own seed) and compute the same losses, but two processes add the gradients of their
halves with one all-reduce (or FSDP's reduce-scatter) while one process accumulates micro-batch
after micro-batch, and the micro-batches pad differently; float32 addition is not associative, so
the summed gradients differ in the last bits (~1e-7 relative). AdamW divides each gradient element
by its own running RMS, so an element whose gradient is ~0 (pure rounding noise) can take a visibly
different step: after 3 steps at lr 1e-3 a handful of elements differ by up to ~2e-5, while the mean
difference is ~1e-9 and the weights moved by ~2e-3 on average. We require: max |diff| <= 1e-4, mean
|diff| <= 1e-7, at most 0.1 % of the elements off by more than 1e-6. Adam is blind to a constant
factor in the gradients, so the loss and gradient-norm metrics (compared to 1e-5 relative) are what
catch a normalisation error (a factor 2); the weights catch a wrong set of sequences or a lost update.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rltf.models import load_model
from rltf.models.vllm_backend import vllm_available

pytestmark = pytest.mark.slow  # multi-process runs: the full tier (make test) only

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"
CPU_2PROC = ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml"
FSDP_2PROC = ROOT / "recipes" / "accelerate" / "fsdp2-cpu-2proc.yaml"
ZERO_2PROC = {stage: ROOT / "recipes" / "accelerate" / f"zero{stage}-cpu-2proc.yaml" for stage in (2, 3)}
ZERO_RUNS = {2: ["span-ppo"], 3: ["grpo", "rltf-fm", "span-ppo", "sdpo-ema"]}  # span-ppo: a value head beside the policy
RL_METHODS = ["grpo", "rltf-fm", "span-ppo"]
FSDP_METHODS = ["grpo", "span-ppo", "sdpo"]  # rltf-fm's extra terms take the same sharded path (ZeRO-3 runs all three)
METHODS = [*RL_METHODS, "grpo-lora", "reward-model"]  # grpo-lora: LoRA adapters, data parallel
ONE_ONLY = ["sdpo", "sdpo-ema"]  # compared with their FSDP2 / ZeRO-3 runs only (data parallel adds nothing new)

def assert_same_weights(one: dict, two: dict, start: dict | None = None) -> None:
    diffs = torch.cat([(one[k] - two[k]).abs().flatten() for k in one])
    assert diffs.max().item() <= 1e-4 and diffs.mean().item() <= 1e-7, (diffs.max().item(), diffs.mean().item())
    assert (diffs > 1e-6).float().mean().item() <= 1e-3
    if start is not None:  # the steps did something the comparison can see (LoRA: in the adapters)
        trained = [k for k in start if "lora_" in k] or list(start)
        moved = torch.cat([(one[k] - start[k]).abs().flatten() for k in trained])
        assert moved.mean().item() > 1e3 * 1e-7
EXACT = ("tokens", "epoch", "reward/turn", "reward/task", "reward/span_sum", "accuracy/", "episodes/", "eval/",
         "critique/", "feedback/", "spans/", "sd/", "fm/", "ppo/updates", "ppo/skipped", "kl/beta", "lr")
SKIP = ("time/", "tokens/trained", "tokens/per_s")  # wall clock, and padding-dependent cost
LOGP_DIFFERENCES = ("sd/token_loss", "loss/")  # SDPO's losses (grad norms and weights keep the tight checks)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WORLD_SIZE", None)
    return env


def free_port() -> int:
    """A port no process listens on (a fixed one may still be held by the previous launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], processes: int, timeout: int = 600, config: Path = CPU_2PROC) -> subprocess.CompletedProcess:
    if processes == 1:
        cmd = [sys.executable, *args]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "--main_process_port", str(free_port()), *args]
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The methods trained by 1 process and by 2 processes (RL: 3 steps; reward model: 2 epochs, 4 steps)."""
    base = tmp_path_factory.mktemp("dist")
    launch([str(WORKER), str(base / "one"), *METHODS, *ONE_ONLY], 1)
    launch([str(WORKER), str(base / "two"), *METHODS], 2)
    launch([str(WORKER), str(base / "fsdp"), *FSDP_METHODS], 2, config=FSDP_2PROC)
    return base


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_train_as_one(runs, method):
    one, two = torch.load(runs / "one" / method / "final.pt"), torch.load(runs / "two" / method / "final.pt")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert_same_weights(one["tensors"], two["tensors"], torch.load(runs / "one" / method / "start.pt"))
    assert_same_metrics(runs / "one" / method, runs / "two" / method, method)
    assert one["history"] == two["history"]


def assert_same_metrics(one: Path, two: Path, method: str) -> None:
    m1, m2 = _metrics(one / "metrics.jsonl"), _metrics(two / "metrics.jsonl")
    assert [m["step"] for m in m1] == [m["step"] for m in m2] == [1, 2, 3, 4][:len(m1)] and len(m1) >= 3
    for a, b in zip(m1, m2):
        assert set(a) == set(b)
        for key in a:
            if key.startswith(SKIP):
                continue
            if method.startswith("sdpo") and key.startswith(LOGP_DIFFERENCES):  # a mean of log p_student -
                # log p_teacher, each ~ -10 here: float32 rounding of ~1e-6 survives the cancellation
                assert b[key] == pytest.approx(a[key], abs=2e-6), (a["step"], key)
            elif key.startswith(EXACT) or key == "step":
                assert a[key] == b[key], (a["step"], key)  # same samples, same rewards, same evaluation
            else:
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (a["step"], key)
    if method != "reward-model":
        assert any(k.startswith("eval/") for k in m1[1])  # the held-out evaluation ran (split over 2 processes)


@pytest.mark.parametrize("method", FSDP_METHODS)
def test_fsdp2_sharded_processes_train_as_one(runs, method):
    """FSDP2 full sharding over 2 processes (gloo) against 1 unsharded process."""
    one, fsdp = torch.load(runs / "one" / method / "final.pt"), torch.load(runs / "fsdp" / method / "final.pt")
    assert fsdp["sharded"] and not one["sharded"]
    assert_same_weights(one["tensors"], fsdp["tensors"], torch.load(runs / "one" / method / "start.pt"))
    assert_same_metrics(runs / "one" / method, runs / "fsdp" / method, method)
    assert one["history"] == fsdp["history"]


def test_fsdp2_checkpoint_holds_the_full_weights_and_resumes_exactly(runs, tmp_path):
    run = runs / "fsdp" / "span-ppo"
    final = torch.load(run / "final.pt")["tensors"]
    model = load_model(str(run / "checkpoint-3" / "model"), device="cpu")
    for name, p in model.named_parameters():
        assert torch.equal(p, final[f"policy.{name}"]), name
    state = torch.load(run / "checkpoint-3" / "trainer_state.pt", weights_only=False)
    assert state["optimizer_format"] == "fsdp-full"
    launch([str(WORKER), str(tmp_path), "span-ppo", "--stop-after", "2"], 2, config=FSDP_2PROC)
    launch([str(WORKER), str(tmp_path), "span-ppo", "--resume"], 2, config=FSDP_2PROC)
    resumed = torch.load(tmp_path / "span-ppo" / "final.pt")["tensors"]
    for name, p in final.items():
        assert torch.equal(p, resumed[name]), name  # bit-identical on CPU


def deepspeed_missing() -> str | None:
    """Why the DeepSpeed tests cannot run here, or None (printed as the skip reason)."""
    try:
        import deepspeed  # noqa: F401
    except Exception as e:  # ImportError, or a build without the ops it needs
        return (f"DeepSpeed is not importable ({type(e).__name__}: {e}); install it without CUDA: "
                "DS_BUILD_OPS=0 pip install --no-build-isolation -c constraints.txt deepspeed")
    return None


@pytest.fixture(scope="module")
def zero_runs(runs):
    """ZeRO-2 and ZeRO-3 over 2 processes (gloo) on the same global batches as ``runs``."""
    reason = deepspeed_missing()
    if reason:
        pytest.skip(reason)
    for stage, methods in ZERO_RUNS.items():
        launch([str(WORKER), str(runs / f"zero{stage}"), *methods], 2, config=ZERO_2PROC[stage])
    return runs


@pytest.mark.parametrize("stage,method", [(s, m) for s, ms in ZERO_RUNS.items() for m in ms])
def test_deepspeed_zero_processes_train_as_one(zero_runs, stage, method):
    """DeepSpeed ZeRO-2/3 over 2 processes against 1 process: same samples, metrics, weights."""
    one, zero = torch.load(zero_runs / "one" / method / "final.pt"), torch.load(zero_runs / f"zero{stage}" / method / "final.pt")
    assert zero["zero_stage"] == stage and one["zero_stage"] is None and zero["world_size"] == 2
    assert_same_weights(one["tensors"], zero["tensors"], torch.load(zero_runs / "one" / method / "start.pt"))
    assert_same_metrics(zero_runs / "one" / method, zero_runs / f"zero{stage}" / method, method)
    assert one["history"] == zero["history"]


def test_zero3_checkpoint_holds_full_weights_and_resumes_exactly(zero_runs, tmp_path):
    run = zero_runs / "zero3" / "span-ppo"
    final = torch.load(run / "final.pt")["tensors"]
    model = load_model(str(run / "checkpoint-3" / "model"), device="cpu")  # whole weights, gathered
    for name, p in model.named_parameters():
        assert torch.equal(p, final[f"policy.{name}"]), name
    state = torch.load(run / "checkpoint-3" / "trainer_state.pt", weights_only=False)
    assert state["optimizer_format"] == "deepspeed"
    assert torch.equal(state["extra_modules"]["value_head"]["weight"], final["value_head.weight"])
    partitions = sorted(p.name for p in (run / "checkpoint-3" / "deepspeed" / "zero").iterdir() if "optim" in p.name)
    assert len(partitions) == 2  # one AdamW partition per process
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    # stop and resume a two-turn method under ZeRO-3 (span-ppo resumes under FSDP2, grpo data parallel)
    launch([str(WORKER), str(tmp_path), "rltf-fm", "--stop-after", "2"], 2, config=ZERO_2PROC[3])
    launch([str(WORKER), str(tmp_path), "rltf-fm", "--resume"], 2, config=ZERO_2PROC[3])
    resumed = torch.load(tmp_path / "rltf-fm" / "final.pt")["tensors"]
    for name, p in torch.load(zero_runs / "zero3" / "rltf-fm" / "final.pt")["tensors"].items():
        assert torch.equal(p, resumed[name]), name  # bit-identical on CPU


def test_two_processes_write_one_loadable_checkpoint(runs):
    run = runs / "two" / "grpo"
    checkpoints = sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint-"))
    assert checkpoints == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    state = torch.load(run / "checkpoint-3" / "trainer_state.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["rng_per_rank"]) == 2
    model = load_model(str(run / "checkpoint-3" / "model"), device="cpu")
    final = torch.load(run / "final.pt")["tensors"]
    for name, p in model.named_parameters():
        assert torch.equal(p, final[f"policy.{name}"]), name
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # logged once, not once per process


def test_stop_and_resume_under_two_processes(runs, tmp_path):
    methods = ["grpo"]  # span-ppo resumes under FSDP2, rltf-fm under ZeRO-3
    launch([str(WORKER), str(tmp_path), *methods, "--stop-after", "2"], 2)
    for method in methods:
        assert (tmp_path / method / "checkpoint-2").is_dir() and not (tmp_path / method / "checkpoint-3").exists()
    launch([str(WORKER), str(tmp_path), *methods, "--resume"], 2)
    for method in methods:
        resumed = torch.load(tmp_path / method / "final.pt")["tensors"]
        straight = torch.load(runs / "two" / method / "final.pt")["tensors"]
        for name, p in straight.items():
            assert torch.equal(p, resumed[name]), (method, name)  # bit-identical on CPU
        a = _metrics(runs / "two" / method / "metrics.jsonl")
        b = _metrics(tmp_path / method / "metrics.jsonl")
        assert [m["step"] for m in b] == [1, 2, 3]
        for x, y in zip(a, b):
            assert {k: v for k, v in x.items() if not k.startswith(("time/", "tokens/per_s"))} == \
                   {k: v for k, v in y.items() if not k.startswith(("time/", "tokens/per_s"))}


@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (pip install 'rltf[vllm]')")
def test_each_process_rolls_out_on_its_own_vllm_engine(tmp_path):
    """Backend vllm under 2 processes: every process starts an engine, pushes its weights into it after
    each step, and the run samples and trains as one process with one engine does."""
    launch([str(WORKER), str(tmp_path / "one"), "grpo", "--backend", "vllm"], 1)
    launch([str(WORKER), str(tmp_path / "two"), "grpo", "--backend", "vllm"], 2)
    one, two = torch.load(tmp_path / "one" / "grpo" / "final.pt"), torch.load(tmp_path / "two" / "grpo" / "final.pt")
    assert one["backend"] == two["backend"] == "vllm" and two["world_size"] == 2
    assert two["weight_syncs"] == one["weight_syncs"] >= 2
    assert_same_weights(one["tensors"], two["tensors"], torch.load(tmp_path / "one" / "grpo" / "start.pt"))
    m1 = _metrics(tmp_path / "one" / "grpo" / "metrics.jsonl")
    m2 = _metrics(tmp_path / "two" / "grpo" / "metrics.jsonl")
    for a, b in zip(m1, m2):
        for key in a:
            if key.startswith(EXACT) and not key.startswith(SKIP):
                assert a[key] == b[key], (a["step"], key)


def test_accelerate_launch_cli_trains_and_saves(tmp_path):
    """The issue's command, on the CPU config (plain --num_processes 2 starts one process without MPI)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC),
           "--main_process_port", str(free_port()), "-m", "rltf",
           "train", "grpo", "--config", "recipes/cpu-add2-grpo.yaml", "--set", "model=tiny-random",
           "--set", "max_steps=2", "--set", f"output_dir={out}", "--set", "eval_n=4", "--set", "backend=hf"]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.count("done: step 2") == 1  # one process reports
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-2"]
    load_model(str(out / "checkpoint-2" / "model"), device="cpu")


def test_a_dead_rank_stops_the_launcher_and_the_run_resumes(tmp_path):
    """A rank SIGKILLed in the middle of a 2-process run: the launcher stops the other rank and
    exits non-zero within seconds (no hang in a collective); the run resumes from its last checkpoint."""
    import signal
    import time

    import psutil

    out = tmp_path / "run"

    def launch(steps, *extra):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC),
               "--main_process_port", str(free_port()), "-m", "rltf", "train", "grpo",
               "--config", "recipes/cpu-add2-grpo.yaml", "--set", "model=tiny-random", "--set", f"max_steps={steps}",
               "--set", f"output_dir={out}", "--set", "eval_n=4", "--set", "eval_every=0", "--set", "backend=hf",
               "--set", "save_every=1", "--set", "eval_at_start=false", *extra]
        return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    run = launch(1000)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint-2").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.poll() is None, run.communicate()[1][-3000:]
    ranks = [p for p in psutil.Process(run.pid).children(recursive=True) if "rltf" in " ".join(p.cmdline())]
    assert len(ranks) == 2
    killed = time.monotonic()
    ranks[-1].send_signal(signal.SIGKILL)
    _, err = run.communicate(timeout=120)
    stopped_after = time.monotonic() - killed
    print(f"launcher exited {run.returncode} {stopped_after:.1f} s after the kill")
    assert run.returncode != 0 and stopped_after < 60, (run.returncode, stopped_after, err[-2000:])
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
    last = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.pt").exists())
    resumed = launch(last + 1, "--resume", str(out))
    stdout, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert f"resumed from {out / f'checkpoint-{last}'}" in stdout and f"done: step {last + 1}" in stdout
