"""The pieces of data-parallel training, in one process: launch checks, the FSDP2 and ZeRO plans read
from the accelerate config, sharding by whole groups, collectives, the global judge-concurrency cap,
the reply cache under concurrent writers. (The multi-process runs are in test_distributed.py.)"""
import json
import os
import threading

import pytest
import torch

from rltf.errors import ConfigError
from rltf.engine.distributed import Distributed, SingleProcess, check_launch


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
    from rltf.methods import build_trainer, make_config

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
    from rltf.engine.zero import ZeROPlan, engine_config

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
    from rltf.engine.sharding import FSDPPlan

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

    from rltf.methods import make_config
    from rltf.engine import Engine as Trainer

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
