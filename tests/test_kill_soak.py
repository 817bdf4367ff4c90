"""SIGKILL at 20 moments of a training run, some of them in the middle of writing or deleting a checkpoint;
resumed each time, the run ends with the parameters, optimizer state and metrics.jsonl of an
uninterrupted run, and no interrupted checkpoint is ever taken as the latest."""
import json
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rltf.engine.checkpoint import list_checkpoints, resolve_resume

# 50 steps: 20 kills take ~15 (each cycle of 5 kills waits for 3-5 steps of progress), so the run
# never finishes early (the test fails if it does), and the uninterrupted run stays short
ARGS = ["train", "rltf-fm", "--backend", "hf", "--model", "tiny-random", "--task", "add2", "--max-steps", "50", "--prompts-per-step", "2",
        "--group-size", "3", "--max-new-tokens", "12", "--eval-every", "25", "--eval-n", "4", "--save-every", "1",
        "--save-total-limit", "2", "--micro-batch-size", "8", "--learning-rate", "1e-3"]
KILLS = 20
VOLATILE = ("time/", "tokens/per_s")  # wall-clock figures differ between any two runs


# Every run is `rltf.cli.main` in a process forked from a server that imported rltf, torch and
# transformers once: 22 fresh interpreters spent most of the test importing them (~4 s each). The
# runs still load the model, resume and write checkpoints from scratch, each in its own session.
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["rltf.cli", "rltf.methods"])


class Run:
    """One `rltf train` process (the part of :class:`subprocess.Popen` the test uses)."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        log.unlink(missing_ok=True)
        self.process = FORKS.Process(target=cli_in_new_session, args=(args, str(log)))
        self.process.start()
        self.pid = self.process.pid
        while not log.exists() and self.process.exitcode is None:  # its session exists once it opened the log
            time.sleep(0.001)

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def errors(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def cli_in_new_session(args: list[str], log: str) -> None:
    os.setsid()  # its own process group, so a kill reaches anything it started
    out = os.open(os.devnull, os.O_WRONLY)
    err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    from rltf.cli import main

    sys.exit(main(args))


def start(out: Path) -> Run:
    resume = ["--resume", str(out)] if out.exists() and list_checkpoints(out) else []
    return Run([*ARGS, "--output-dir", str(out), *resume], out.parent / f"{out.name}.stderr")


def latest_step(out: Path) -> int:
    found = list_checkpoints(out) if out.exists() else []
    return int(found[-1].name.split("-")[1]) if found else 0


def kill_when(proc: Run, out: Path, rnd: random.Random, mode: str) -> bool:
    """SIGKILL ``proc``: during start-up ("startup": model loading, resuming), at a random moment
    after it made progress ("random"), or as soon as it is writing ("saving") or deleting
    ("pruning") a checkpoint. Moments follow the run's progress, not the clock, so the test means
    the same on a fast and on a loaded machine. False when the run finished first."""
    begin, t0 = latest_step(out), time.monotonic()
    prefix = {"saving": ".checkpoint-", "pruning": ".trash-"}.get(mode)
    wait = rnd.uniform(0.2, 2.0) if mode == "startup" else rnd.uniform(0.0, 0.15)
    while proc.poll() is None:
        if mode == "startup" and time.monotonic() - t0 >= wait:
            break
        if mode == "random" and latest_step(out) > begin:
            time.sleep(wait)
            break
        if prefix and out.exists() and any(p.name.startswith(prefix) for p in os.scandir(out)):
            break
        time.sleep(0.001)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def check_latest_is_whole(out: Path) -> None:
    if not out.exists() or not list_checkpoints(out):
        return
    latest = resolve_resume(out)
    state = torch.load(latest / "trainer_state.pt", weights_only=False)
    assert state["step"] == int(latest.name.split("-")[1])
    assert load_file(latest / "model" / "model.safetensors")
    assert (latest / "config.yaml").read_text().startswith("method: rltf-fm")


def metrics(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


@pytest.mark.soak
def test_sigkill_at_twenty_moments_loses_nothing(tmp_path):
    reference = tmp_path / "uninterrupted"
    proc = start(reference)
    assert proc.wait(timeout=600) == 0, proc.errors()

    out, rnd, landed, modes = tmp_path / "killed", random.Random(0), 0, []
    while landed < KILLS:
        mode = ("saving", "random", "startup", "pruning", "random")[landed % 5]
        proc = start(out)
        if kill_when(proc, out, rnd, mode):
            landed += 1
            modes.append(mode)
            check_latest_is_whole(out)
        else:
            assert proc.returncode == 0, proc.errors()
            pytest.fail(f"the run finished after {landed} kills; make it longer")
    proc = start(out)
    assert proc.wait(timeout=600) == 0, proc.errors()
    assert [modes.count(m) for m in ("saving", "pruning", "startup", "random")] == [4, 4, 4, 8]

    a, b = resolve_resume(reference), resolve_resume(out)
    assert a.name == b.name == "checkpoint-50"
    wa, wb = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = torch.load(a / "trainer_state.pt", weights_only=False)["optimizer"]["state"]
    sb = torch.load(b / "trainer_state.pt", weights_only=False)["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert all(torch.equal(sa[k][n], sb[k][n]) for n in sa[k])
    assert metrics(reference) == metrics(out)
    assert not any(p.name.startswith((".checkpoint-", ".trash-")) for p in out.iterdir())
