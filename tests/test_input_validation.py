"""Bad input on the command line and in configs: one line naming the problem, exit 2, never a traceback
or a silent substitute. Every numeric config field and flag declares its range, and the range holds."""
import argparse
import dataclasses
import subprocess
import sys

import pytest

from rltf.cli import build_parser
from rltf.errors import ConfigError
from rltf.engine.config_fields import config_from_values
from rltf.methods import METHODS

CONFIGS = {name: method.config for name, method in METHODS.items()}
BOUNDS = ("ge", "gt", "le", "lt")


def numeric_fields():
    for name, cls in CONFIGS.items():
        for f in dataclasses.fields(cls):
            kind = str(f.type)
            if ("int" in kind or "float" in kind) and "bool" not in kind:
                yield name, cls, f


def outside(meta, kind):
    """Values just outside each declared bound."""
    step = 1 if "int" in kind and "float" not in kind else 1e-6
    out = []
    if "ge" in meta:
        out.append(meta["ge"] - step)
    if "gt" in meta:
        out.append(meta["gt"])
    if "le" in meta:
        out.append(meta["le"] + step)
    if "lt" in meta:
        out.append(meta["lt"])
    return out


@pytest.mark.parametrize("method,cls,f", list(numeric_fields()), ids=lambda x: getattr(x, "name", str(x)))
def test_every_numeric_config_field_declares_and_enforces_its_range(method, cls, f):
    assert any(k in f.metadata for k in BOUNDS), f"{method}.{f.name} declares no range"
    config_from_values(cls, {}, method)  # the defaults are inside their ranges
    for bad in outside(f.metadata, str(f.type)):
        with pytest.raises(ConfigError, match=f.name):
            config_from_values(cls, {f.name: bad}, method)
    if "float" in str(f.type):
        with pytest.raises(ConfigError, match="finite"):
            config_from_values(cls, {f.name: float("nan")}, method)


def test_every_choice_field_refuses_other_values():
    for name, cls in CONFIGS.items():
        for f in dataclasses.fields(cls):
            if "choices" in f.metadata:
                with pytest.raises(ConfigError, match=f"{f.name} must be one of"):
                    config_from_values(cls, {f.name: "no-such-choice"}, name)


def _actions(parser, path=""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_numeric_flag_is_bounded():
    """A flag read as a number checks its range (train's config flags are checked by the config)."""
    seen = 0
    for path, action in _actions(build_parser()):
        if action.type in (int, float):
            pytest.fail(f"rltf{path} {action.option_strings} reads a number without a range")
        bounds = getattr(action.type, "bounds", None)
        if bounds is not None:
            seen += 1
            assert any(k in bounds for k in BOUNDS)
            for bad in outside(bounds, action.type.__name__):
                with pytest.raises(argparse.ArgumentTypeError):
                    action.type(str(bad))
    assert seen >= 20


def rltf(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "rltf.cli", *args], capture_output=True, text=True, timeout=timeout)


def in_process(capsys, *args) -> tuple[int, str]:
    """(exit code, stderr) of ``rltf ARGS`` run by the CLI's ``main`` in this process: the same
    code path as the console script without a fresh interpreter's 5 s of imports (test_cli.py
    runs the real entry point). An exception other than the CLI's own exit fails the test."""
    from rltf.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--task", "add2?few_shot=abc"], "few_shot must be a non-negative integer, got 'abc'"),
    (["--task", "add2?few_shot=-2"], "few_shot must be a non-negative integer"),
    (["--task", "add2", "--rounds", "0"], "argument --rounds: must be at least 1, got 0"),
    (["--task", "add2", "--n", "0"], "argument --n: must be at least 1, got 0"),
    (["--task", "add2", "--n", "-5"], "argument --n: must be at least 1, got -5"),
    (["--task", "add2", "--n", "ten"], "argument --n: 'ten' is not an integer"),
    (["--task", "add2", "--temperature", "-1"], "argument --temperature: must be at least 0, got -1.0"),
    (["--task", "add2", "--top-p", "1.5"], "argument --top-p: must be at most 1, got 1.5"),
])
def test_eval_bad_input_exits_2_with_one_line(args, message, capsys):
    code, stderr = in_process(capsys, "eval", "--model", "tiny-random", *args)
    assert code == 2
    assert message in stderr.strip().splitlines()[-1]
    if not message.startswith("argument"):  # rltf's own errors are one line; argparse adds its usage line
        assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_input_files_are_errors(tmp_path, content, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    for args in (["annotate", "--input", str(empty), "--output", str(tmp_path / "out.jsonl")],
                 ["eval-rm", "--data", str(empty), "--model", "tiny-random"]):
        code, stderr = in_process(capsys, *args)  # the command's own check, as the CLI prints it
        assert code == 2
        assert stderr.strip() == f"rltf: error: {empty}: no records (the file is empty or holds only blank lines)"


def test_train_rejects_a_negative_learning_rate_in_one_line(tmp_path, capsys):
    code, stderr = in_process(capsys, "train", "grpo", "--model", "tiny-random", "--learning-rate=-1e-5",
                              "--output-dir", str(tmp_path / "run"))
    assert code == 2 and stderr.strip() == "rltf: error: learning_rate must be at least 0, got -1e-05"


def test_unreachable_hub_id_fails_fast_in_one_line():
    import time

    t = time.monotonic()
    r = rltf("eval", "--model", "nobody/no-such-model", "--task", "add2", "--n", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "nobody/no-such-model" in r.stderr and time.monotonic() - t < 30


def test_jsonl_reading_names_undecodable_lines_and_writing_never_fails(tmp_path):
    import json

    from rltf.errors import DataError
    from rltf.tasks.jsonl import json_line, read_records

    bad_utf8 = tmp_path / "bytes.jsonl"
    bad_utf8.write_bytes(b'{"prompt": "ok", "answer": "a"}\n{"prompt": "\xff\xfe", "answer": "b"}\n')
    with pytest.raises(DataError, match=r"bytes.jsonl:2: not valid UTF-8"):
        list(read_records(bad_utf8))
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"prompt": "p \\ud800", "answer": "a"}\n')
    with pytest.raises(DataError, match=r"surrogate.jsonl:1: holds a lone surrogate"):
        list(read_records(surrogate))
    line = json_line({"critique": "ok \ud800 \x00 é"})
    assert line.endswith("\n") and line.isascii() and json.loads(line) == {"critique": "ok \ud800 \x00 é"}
    assert json_line({"t": "é"}) == '{"t": "é"}\n'  # plain UTF-8 when it can be encoded
