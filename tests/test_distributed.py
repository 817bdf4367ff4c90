"""Data-parallel training: 2 processes (accelerate launch, gloo on CPU) against 1 process on the same
global batch, stop/resume under 2 processes, one checkpoint, and the pieces (sharding, keyed sampling,
launch checks, judge concurrency, the reply cache under concurrent writers).

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
import threading
from pathlib import Path

import pytest
import torch

from rltf.errors import ConfigError
from rltf.models import load_model
from rltf.models.vllm_backend import vllm_available
from rltf.trainers.distributed import Distributed, SingleProcess, check_launch

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


# -- the pieces, in one process ---------------------------------------------------------------------
def test_launch_checks(monkeypatch):
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # accelerate's CPU launcher without MPI: one process
    with pytest.raises(ConfigError, match="cpu-2proc.yaml"):
        check_launch()
    monkeypatch.delenv("MASTER_ADDR")
    check_launch()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # ZeRO with one process: nothing to partition
    with pytest.raises(ConfigError, match="DeepSpeed ZeRO with one process"):
        check_launch()
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launch()
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")


@pytest.mark.parametrize("written", ["fsdp-full", "deepspeed"])
def test_a_sharded_checkpoint_does_not_resume_in_a_plain_run(tmp_path, written):
    """FSDP's optimizer state is keyed by name, DeepSpeed's is partitioned: neither loads into a
    plain run, which says what wrote the checkpoint instead of failing deep inside torch."""
    from rltf.trainers import build_trainer, make_config

    overrides = dict(model="tiny-random", task="add2", prompts_per_step=2, group_size=2, max_new_tokens=4,
                     eval_at_start=False, eval_every=0, save_every=0, output_dir=str(tmp_path / "run"))
    tr = build_trainer(make_config("grpo", overrides=overrides), console=lambda s: None)
    tr.train_step()
    path = tr.save()
    state = torch.load(path / "trainer_state.pt", weights_only=False)
    state["optimizer_format"] = written
    torch.save(state, path / "trainer_state.pt")
    kind = {"fsdp-full": "a sharded \\(FSDP\\) run", "deepspeed": "a DeepSpeed ZeRO run"}[written]
    with pytest.raises(ConfigError, match=f"written by {kind}; resume it as one"):
        build_trainer(make_config("grpo", overrides=overrides), console=lambda s: None, resume=str(path))


def test_zero_plan_and_engine_config_follow_the_accelerate_config(monkeypatch, tmp_path):
    from rltf.trainers.zero import ZeROPlan, engine_config

    for name in [k for k in os.environ if k.startswith(("ACCELERATE_DEEPSPEED", "ACCELERATE_GRADIENT"))]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert ZeROPlan.from_env() is None
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "cpu")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "1")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    plan = ZeROPlan.from_env()
    assert (plan.stage, plan.offload_param, plan.offload_optimizer, plan.bf16) == (3, "cpu", "none", True)
    cfg = engine_config(plan, max_grad_norm=0.5)
    assert cfg["zero_optimization"] == {"stage": 3, "offload_param": {"device": "cpu"}}
    assert (cfg["gradient_clipping"], cfg["gradient_accumulation_steps"], cfg["bf16"]) == (0.5, 1, {"enabled": True})
    monkeypatch.setenv("ACCELERATE_GRADIENT_CLIPPING", "1.0")  # disagrees with the recipe: which one wins?
    with pytest.raises(ConfigError, match="max_grad_norm: 0.5"):
        engine_config(ZeROPlan.from_env(), max_grad_norm=0.5)
    monkeypatch.delenv("ACCELERATE_GRADIENT_CLIPPING")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")  # rltf accumulates micro-batches itself
    with pytest.raises(ConfigError, match="set it to 1"):
        ZeROPlan.from_env()
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "1")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "1")
    with pytest.raises(ConfigError, match="stage 2 or 3"):
        ZeROPlan.from_env()
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "cpu")  # ZeRO-2 keeps whole parameters
    with pytest.raises(ConfigError, match="needs zero_stage: 3"):
        engine_config(ZeROPlan.from_env(), max_grad_norm=1.0)
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "1")
    # a DeepSpeed JSON file: its ZeRO options are used; an optimizer block of its own is refused
    ds_file = tmp_path / "ds.json"
    ds_file.write_text(json.dumps({"zero_optimization": {"stage": 2, "overlap_comm": True}, "train_batch_size": 8}))
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds_file))
    plan = ZeROPlan.from_env()
    cfg = engine_config(plan, max_grad_norm=1.0)
    assert plan.stage == 2 and cfg["zero_optimization"] == {"stage": 2, "overlap_comm": True}
    assert "train_batch_size" not in cfg and cfg["train_micro_batch_size_per_gpu"] == 1
    ds_file.write_text(json.dumps({"zero_optimization": {"stage": 2}, "optimizer": {"type": "Adam"}}))
    with pytest.raises(ConfigError, match="sets optimizer"):
        engine_config(ZeROPlan.from_env(), max_grad_norm=1.0)
    ds_file.write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        ZeROPlan.from_env()


def test_fsdp_plan_follows_the_accelerate_config(monkeypatch):
    from rltf.trainers.sharding import FSDPPlan

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert FSDPPlan.from_env() is None
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ConfigError, match="fsdp_version: 2"):
        FSDPPlan.from_env()
    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.setenv("FSDP_RESHARD_AFTER_FORWARD", "false")
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "true")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert FSDPPlan.from_env() == FSDPPlan(reshard_after_forward=False, offload_params=True, bf16=True)
    monkeypatch.setenv("FSDP_RESHARD_AFTER_FORWARD", "sometimes")
    with pytest.raises(ConfigError, match="not true or false"):
        FSDPPlan.from_env()


def test_shards_hold_whole_groups():
    d = SingleProcess()
    d.world_size, d.rank = 4, 2
    assert d.shard_bounds(8) == (4, 6)
    lo, hi = d.shard_bounds(8)
    assert list("abcdefgh")[lo:hi] == ["e", "f"]
    assert d.share_bounds(10) == (5, 7)  # uneven: shares of 2 or 3
    with pytest.raises(ConfigError, match="multiple of 4"):
        d.shard_bounds(6, "prompts per step")


def test_single_process_collectives_are_identities():
    d = Distributed("cpu")
    assert (d.world_size, d.rank, d.is_main, d.enabled) == (1, 0, True, False)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([1.0, 2.0])
    d.sum_gradients([p])
    assert p.grad.tolist() == [1.0, 2.0]
    assert d.sum(3) == 3 and d.sum_dict({"a": 1.5}) == {"a": 1.5} and d.gather([1, 2]) == [1, 2]


def test_judge_concurrency_is_a_global_cap():
    from types import SimpleNamespace

    from rltf.trainers import make_config
    from rltf.trainers.base import Trainer

    cfg = make_config("grpo", overrides={"judge_concurrency": 5})
    ranks = SingleProcess()
    run = SimpleNamespace(config=cfg, dist=ranks)  # judge_config reads only these
    assert Trainer.judge_config(run).concurrency == 5
    ranks.world_size = 2
    assert Trainer.judge_config(run).concurrency == 3  # ceil(5 / 2) per process
    ranks.world_size = 8
    assert Trainer.judge_config(run).concurrency == 1


def test_reply_cache_takes_concurrent_writers(tmp_path):
    """Processes (here: separate connections from threads, as processes would open them) writing the
    same SQLite cache at once lose no reply and raise no 'database is locked'."""
    from rltf.feedback.cache import ReplyCache

    path = tmp_path / "cache.sqlite"
    caches = [ReplyCache(path) for _ in range(4)]
    errors = []

    def write(k, cache):
        try:
            for i in range(50):
                cache.put(f"{k}-{i}", f"reply {k} {i}")
        except Exception as e:  # noqa: BLE001 - the test reports any failure
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k, c)) for k, c in enumerate(caches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    fresh = ReplyCache(path)
    assert all(fresh.get(f"{k}-{i}") == f"reply {k} {i}" for k in range(4) for i in range(50))
