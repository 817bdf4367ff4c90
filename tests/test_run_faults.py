"""Faults in the middle of a run, injected into real tiny-model runs through the CLI (docs/RELIABILITY.md
§10): the judge goes away and comes back, the disk fills up or turns read-only, a checkpoint on disk
is damaged, the vLLM engine dies or runs out of memory. Each ends with a clear error and an intact
last checkpoint, and ``--resume`` carries on to the same weights as a run that met no fault."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from faulty_server import FaultyServer
from rltf.cli import main
from rltf.engine import checkpoint as ckpt
from rltf.engine.engine import Engine
from rltf.engine.metrics_logger import MetricsLogger
from rltf.models.integrity import checkpoint_damage, safetensors_damage, torch_file_damage
from rltf.models.vllm_backend import vllm_available

TINY = ["--set", "model=tiny-random", "--set", "task=add2", "--set", "prompts_per_step=2", "--set", "group_size=2",
        "--set", "max_new_tokens=8", "--set", "eval_n=4", "--set", "eval_every=0", "--set", "eval_at_start=false",
        "--set", "learning_rate=1e-2", "--set", "save_every=1", "--set", "backend=hf", "--set", "seed=3"]


def train(method, out, steps, *extra, resume=False):
    args = ["train", method, *TINY, "--set", f"max_steps={steps}", *extra, "--output-dir", str(out)]
    return main(args + (["--resume", str(out)] if resume else []))


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(checkpoint / "model" / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def steps_logged(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same GRPO run of 3 steps without a fault: what every resumed run must end at."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert train("grpo", out, 3) == 0
    return out


# -- the judge goes away and comes back ---------------------------------------------------------
def test_judge_outage_stops_after_a_checkpoint_and_resume_carries_on(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    judge = ["--set", "feedback=judge", "--set", "judge_model=scripted", "--set", "judge_retries=0",
             "--set", "judge_timeout=2", "--set", "judge_concurrency=2"]
    with FaultyServer(["good"]) as server:
        step_of = Engine.train_step

        def server_goes_away_at_step_2(self):
            if self.step == 1:  # the judge endpoint drops every connection from step 2 on
                server.script = iter(lambda: "drop", None)
            return step_of(self)

        monkeypatch.setattr(Engine, "train_step", server_goes_away_at_step_2)
        code = train("rltf-sd", out, 4, *judge, "--set", f"judge_url={server.url}")
        err = capsys.readouterr().err
        assert code == 3, err
        assert "max_feedback_failure_rate 0.5" in err and "in step 2" in err and "checkpoint-2" in err
        assert f"--resume {out}" in err
        line = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]
        assert line["step"] == 2 and line["critique/failed"] > 0  # step 2 was trained, on the fallback
        assert checkpoint_damage(out / "checkpoint-2") is None

        monkeypatch.setattr(Engine, "train_step", step_of)
        server.script = iter(lambda: "good", None)  # the endpoint is back
        assert train("rltf-sd", out, 4, *judge, "--set", f"judge_url={server.url}", resume=True) == 0
    assert steps_logged(out) == [1, 2, 3, 4]  # no step lost, none logged twice
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["critique/failed"] for r in records[2:]] == [0.0, 0.0]


def test_a_failure_rate_of_one_never_stops_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    with FaultyServer(["drop"]) as server:
        code = train("rltf-sd", out, 2, "--set", "feedback=judge", "--set", "judge_model=m", "--set",
                     "judge_retries=0", "--set", f"judge_url={server.url}", "--set", "max_feedback_failure_rate=1")
    assert code == 0, capsys.readouterr().err
    assert all(json.loads(x)["critique/failed"] > 0 for x in (out / "metrics.jsonl").read_text().splitlines()
               if "critique/failed" in json.loads(x))


# -- the disk fills up or turns read-only ---------------------------------------------------------
def test_disk_full_while_writing_a_checkpoint_keeps_the_last_one(tmp_path, capsys, monkeypatch, reference):
    out = tmp_path / "run"
    real_save = torch.save

    def full_disk_at_step_2(obj, f, *a, **kw):
        if "checkpoint-2" in str(f):
            # what torch's zip writer raises on ENOSPC
            raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                               "file data/3: file write failed")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(ckpt.torch, "save", full_disk_at_step_2)
    assert train("grpo", out, 3) == 2
    err = capsys.readouterr().err
    assert f"could not write checkpoint {out / 'checkpoint-2'}" in err and "file write failed" in err
    assert f"the last complete checkpoint {out / 'checkpoint-1'} is intact" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-1"]  # no half-written one
    assert checkpoint_damage(out / "checkpoint-1") is None
    monkeypatch.setattr(ckpt.torch, "save", real_save)  # space is back
    assert train("grpo", out, 3, resume=True) == 0
    assert steps_logged(out) == [1, 2, 3]
    assert_same_weights(out / "checkpoint-3", reference / "checkpoint-3")


def test_read_only_disk_at_the_checkpoint_rename_names_the_path(tmp_path, capsys, monkeypatch, reference):
    out = tmp_path / "run"
    real_replace = ckpt.os.replace

    def read_only_at_step_2(src, dst):
        if str(dst).endswith("checkpoint-2"):
            raise OSError(errno.EROFS, "Read-only file system", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", read_only_at_step_2)
    assert train("grpo", out, 3) == 2
    err = capsys.readouterr().err
    assert f"could not write checkpoint {out / 'checkpoint-2'}" in err and "Read-only file system" in err
    assert "checkpoint-1 is intact" in err
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-1"]
    assert train("grpo", out, 3, resume=True) == 0
    assert_same_weights(out / "checkpoint-3", reference / "checkpoint-3")


def test_disk_full_while_writing_a_metrics_line(tmp_path, capsys, monkeypatch, reference):
    """A real ENOSPC: from step 2 on, metrics.jsonl's writes go to /dev/full."""
    out = tmp_path / "run"
    log = MetricsLogger.log

    def full_from_step_2(self, step, metrics, console=None):
        if step == 2:
            self._file = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 - closed by the logger
        return log(self, step, metrics, console)

    monkeypatch.setattr(MetricsLogger, "log", full_from_step_2)
    assert train("grpo", out, 3) == 2
    err = capsys.readouterr().err
    assert f"could not write {out / 'metrics.jsonl'}: No space left on device" in err
    assert "checkpoint-1 is intact" in err and "Traceback" not in err
    monkeypatch.setattr(MetricsLogger, "log", log)
    assert train("grpo", out, 3, resume=True) == 0
    assert steps_logged(out) == [1, 2, 3]
    assert_same_weights(out / "checkpoint-3", reference / "checkpoint-3")


# -- a checkpoint on disk is damaged --------------------------------------------------------------
def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damage", ["weights", "trainer_state", "tokenizer", "config"])
def test_resume_passes_over_a_damaged_checkpoint_to_the_previous_one(tmp_path, capsys, reference, damage):
    out = tmp_path / "run"
    assert train("grpo", out, 2) == 0  # checkpoints 1 and 2 (save_total_limit 2)
    latest = out / "checkpoint-2"
    damaged = {"weights": latest / "model" / "model.safetensors", "trainer_state": latest / "trainer_state.pt",
               "tokenizer": latest / "model" / "tokenizer.json", "config": latest / "model" / "config.json"}[damage]
    if damage == "tokenizer":
        damaged.unlink()
        named = f"{latest / 'model'}: no tokenizer file (tokenizer.json"
    else:
        truncate(damaged)
        named = str(damaged)
    capsys.readouterr()

    # named directly: refused, naming the file and the whole checkpoints
    assert main(["train", "grpo", *TINY, "--set", "max_steps=3", "--output-dir", str(out),
                 "--resume", str(latest)]) == 2
    err = capsys.readouterr().err
    assert named in err and str(out / "checkpoint-1") in err and "Traceback" not in err

    # the run directory: the newest whole checkpoint, said on the console; ends where the reference does
    assert train("grpo", out, 3, resume=True) == 0
    printed = capsys.readouterr().out
    assert f"passing over a damaged checkpoint: {named}" in printed
    assert f"resuming from {out / 'checkpoint-1'}" in printed and "resumed from" in printed
    assert steps_logged(out) == [1, 2, 3]
    assert_same_weights(out / "checkpoint-3", reference / "checkpoint-3")


def test_eval_of_a_damaged_model_names_the_file(tmp_path, capsys, reference):
    model = tmp_path / "model"
    model.mkdir()
    for f in (reference / "checkpoint-3" / "model").iterdir():
        (model / f.name).write_bytes(f.read_bytes())
    truncate(model / "model.safetensors", 0.9)
    assert main(["eval", "--model", str(model), "--task", "add2", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{model / 'model.safetensors'}: truncated" in err and "Traceback" not in err
    (model / "tokenizer.json").unlink()
    (model / "model.safetensors").write_bytes((reference / "checkpoint-3" / "model" / "model.safetensors").read_bytes())
    assert main(["eval", "--model", str(model), "--task", "add2", "--n", "2"]) == 2
    assert "no tokenizer file" in capsys.readouterr().err


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(tmp_path, capsys):
    out = tmp_path / "run"
    assert train("grpo", out, 2) == 0
    for cp in ("checkpoint-1", "checkpoint-2"):
        truncate(out / cp / "trainer_state.pt")
    capsys.readouterr()
    assert train("grpo", out, 3, resume=True) == 2
    err = capsys.readouterr().err
    assert "every checkpoint is damaged" in err and "checkpoint-1/trainer_state.pt" in err
    assert steps_logged(out) == [1, 2]  # nothing trained, nothing overwritten


def test_integrity_checks_on_hand_made_files(tmp_path):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(4, 4)}, str(f))
    assert safetensors_damage(f) is None
    whole = f.read_bytes()
    for cut in (3, 8, 20, len(whole) - 1):
        f.write_bytes(whole[:cut])
        assert "truncated" in safetensors_damage(f)
    f.write_bytes(whole + b"\0")
    assert "longer than its header says" in safetensors_damage(f)
    f.write_bytes((10).to_bytes(8, "little") + b"not json!!" + b"\0" * 8)
    assert "not JSON" in safetensors_damage(f)
    t = tmp_path / "s.pt"
    torch.save({"x": torch.zeros(100)}, t)
    assert torch_file_damage(t) is None
    truncate(t, 0.8)
    assert "truncated" in torch_file_damage(t)


# -- the vLLM engine dies or runs out of memory ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not vllm_available(), reason="needs vLLM")
def test_vllm_engine_dying_mid_run_names_the_setting_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    import vllm

    out = tmp_path / "run"
    real_generate, calls = vllm.LLM.generate, []

    def dies_on_the_second_rollout(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("EngineCore encountered an issue. See stack trace (above) for the root cause.")
        if len(calls) == 3:
            raise ValueError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`")
        return real_generate(self, *a, **kw)

    monkeypatch.setattr(vllm.LLM, "generate", dies_on_the_second_rollout)
    vllm_args = ["--set", "backend=vllm", "--set", "vllm_kv_cache_gb=0.05"]
    assert train("grpo", out, 3, *vllm_args) == 2
    err = capsys.readouterr().err
    assert "the vLLM engine failed while generating (RuntimeError: EngineCore encountered an issue" in err
    assert "backend: hf" in err and f"{out / 'checkpoint-1'} is intact" in err and "Traceback" not in err
    assert checkpoint_damage(out / "checkpoint-1") is None
    assert train("grpo", out, 3, *vllm_args, resume=True) == 2  # the third call: out of KV-cache memory
    err = capsys.readouterr().err
    assert "ran out of memory: raise vllm_kv_cache_gb (now 0.05 GiB)" in err and "generation_batch_size" in err
    assert train("grpo", out, 3, *vllm_args, resume=True) == 0
    assert steps_logged(out) == [1, 2, 3]
