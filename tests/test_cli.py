"""The command line as a user runs it: exit codes, one-line errors, deterministic output files."""
import json
import subprocess
import sys

import pytest

RLTF = [sys.executable, "-m", "rltf.cli"]


def rltf(*args, timeout=300):
    return subprocess.run(RLTF + list(args), capture_output=True, text=True, timeout=timeout)


def test_tasks_lists_presets():
    r = rltf("tasks")
    assert r.returncode == 0
    for name in ("knights_knaves", "binary_matrix", "shortest_path", "add2", "addsub2", "math", "humaneval"):
        assert name in r.stdout


def test_help_and_tasks_do_not_import_torch_and_every_command_is_listed():
    """Only the command being run is imported: `rltf --help` and `rltf tasks` answer without torch."""
    from rltf.cli import COMMANDS

    probe = ("import sys; from rltf.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('heavy:', sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    for args in (["--help"], ["tasks"], ["bogus"]):
        r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert r.stdout.strip().endswith("heavy: []"), (args, r.stdout[-300:], r.stderr[-300:])
        if args == ["--help"]:
            for name, (_, help_line) in COMMANDS.items():
                assert name in r.stdout and help_line.split()[0] in r.stdout
        if args == ["bogus"]:
            assert "invalid choice: 'bogus'" in r.stderr
    r = rltf("train", "--help")  # the command run gets its whole parser
    assert r.returncode == 0 and "rltf-sd" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["eval", "--model", "tiny-random", "--task", "nope"], "unknown task"),
    (["eval", "--model", "tiny-random", "--task", "math:/no/such.jsonl"], "no such file"),
    (["eval", "--model", "/no/such/model", "--task", "add2"], "model '/no/such/model'"),
    (["eval", "--model", "tiny-random", "--task", "add2", "--feedback", "judge", "--rounds", "2"], "--judge-url"),
])
def test_bad_input_gives_one_line_and_exit_2(args, message):
    r = rltf(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_malformed_jsonl_line_number(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"problem": "1+1", "answer": "2"}\n\n{"problem": \n')
    r = rltf("eval", "--model", "tiny-random", "--task", f"math:{f}")
    assert r.returncode == 2 and f"{f}:3" in r.stderr


def test_eval_writes_deterministic_file(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}.json"
        r = rltf("eval", "--model", "tiny-random", "--task", "add2", "--n", "4", "--seed", "0",
                 "--temperature", "1.0", "--max-new-tokens", "8", "--rounds", "2", "--output", str(out))
        assert r.returncode == 0, r.stderr
        outs.append(out.read_text())
    data = json.loads(outs[0])
    assert outs[0] == outs[1]
    assert data["n"] == 4 and 0 <= data["ci95"][0] <= data["accuracy"] <= data["ci95"][1] <= 1
    assert len(data["per_round_accuracy"]) == 2
    assert json.loads((tmp_path / "out0.timing.json").read_text())["tokens_per_s"] > 0


@pytest.mark.slow
def test_eval_default_model_end_to_end(tmp_path, smol):
    """The embedded model evaluates from the command line (how long it takes is a benchmark's business:
    a wall-clock bound here failed whenever the machine was busy)."""
    out = tmp_path / "out.json"
    r = rltf("eval", "--model", "smollm2-135m", "--task", "add2", "--n", "8", "--seed", "0", "--output", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["n"] == 8 and data["format_rate"] > 0.5  # the few-shot prompt teaches the format
