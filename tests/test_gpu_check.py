"""The GPU check's CPU dry run: the same command that proves the CUDA path on a GPU machine keeps
working between GPU runs (small models, CPU, no TRL or vLLM rows)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def run(args, tmp_path):
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false",
           "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--output", str(tmp_path / "check.json")],
                          capture_output=True, text=True, env=env, timeout=900)
    return proc, (json.loads((tmp_path / "check.json").read_text()) if (tmp_path / "check.json").exists() else None)


@pytest.mark.slow
def test_the_dry_run_trains_every_method_and_checks_agreement_and_fsdp2(tmp_path):
    proc, report = run(["--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {(r["check"], r["model"]): r for r in report["rows"]}
    assert [r["status"] for r in report["rows"]] == ["ok"] * 6
    for method in ("grpo", "rltf-sd+fm", "span-ppo"):
        f = rows[(method, "tiny-random")]["figures"]
        assert f["generated_tokens_per_step"] > 0 and f["trained_tokens_per_step"] > 0 and f["s_per_step"] > 0
        assert f["precision"] == "float32"  # dtype auto: the tiny model is below the bf16 probe's size
    big = rows[("grpo", "qwen2-mini")]["figures"]
    assert big["params"] > 151_936 * 128  # the full Qwen2 vocabulary's embedding, tied with the LM head
    agree = rows[("log-prob agreement", "tiny-random")]["figures"]
    assert agree["float32_max_abs_diff"] == 0.0 and 0 < agree["bfloat16_max_abs_diff"] < 0.15
    fsdp = rows[("FSDP2 step, 1 process", "tiny-random")]["figures"]
    assert fsdp["loss_sharded"] == pytest.approx(fsdp["loss_unsharded"]) and fsdp["max_weight_change"] > 0
    assert fsdp["max_weight_diff_vs_unsharded"] < 1e-6
    assert report["matmul_tflops"]["float32"] > 0 and report["dry_run"] is True
    table = proc.stdout[proc.stdout.index("| check |"):].split("\n\n")[0].splitlines()
    assert len(table) == 8 and table[1].startswith("|---")  # header, rule, 6 rows
    assert "6 of 6 rows ok or skipped" in proc.stdout
    left = [p.name for p in (tmp_path / "tmp").iterdir() if p.name != "torchinductor_root"]  # torch's compile cache
    assert left == []  # the random models' weights (65 MB a run) are removed


def test_rows_past_the_time_budget_are_skipped_and_said_so(tmp_path):
    proc, report = run(["--dry-run", "--time-budget", "0"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {r["status"] for r in report["rows"]} == {"skipped: time budget spent"}
    assert len(report["rows"]) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA runs the real check")
def test_without_cuda_the_real_check_refuses_and_points_at_the_dry_run(tmp_path):
    proc, report = run([], tmp_path)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr and report is None
