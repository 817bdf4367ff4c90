"""docs/EXTENDING.md's worked example is the shipped file, and every command in it runs."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOC = (ROOT / "docs" / "EXTENDING.md").read_text()


def test_the_documented_file_is_the_shipped_file():
    block = re.search(r"<!-- example: examples/vowels.py -->\n```python\n(.*?)```", DOC, re.S).group(1)
    assert block == (ROOT / "examples" / "vowels.py").read_text()


COMMANDS = [line for line in re.search(r"<!-- commands: run in examples/ -->\n```bash\n(.*?)```", DOC,
                                       re.S).group(1).splitlines() if line.startswith("rltf ")]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split()[1] + "-" + str(i) for i, c in enumerate(COMMANDS)])
def test_every_documented_command_runs(command, tmp_path):
    args = shlex.split(command)[1:]
    args = [str(tmp_path / a) if a.startswith("runs/") else a for a in args]
    r = subprocess.run([sys.executable, "-m", "rltf.cli", *args], cwd=ROOT / "examples", capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert ("accuracy" in r.stdout) or ("done: step" in r.stdout)


def test_reward_functions_replace_the_reward_and_bad_ones_are_named(tmp_path):
    from rltf.errors import ConfigError
    from rltf.tasks import get_task

    task = get_task(f"{ROOT / 'examples' / 'vowels.py'}:VowelCount?reward={ROOT / 'examples' / 'vowels.py'}:brevity")
    p = task.problems("eval", 1)[0]
    right = f"\\boxed{{{p.answer}}}"
    assert task.score(p, right).reward == 1.0 and task.score(p, right).correct
    assert task.score(p, "word " * 40 + right).reward == pytest.approx(1.0 - 0.01 * 11)
    bad = tmp_path / "bad.py"
    bad.write_text("def nan_reward(prompt, answer, **info):\n    return float('nan')\n")
    task = get_task(f"add2?reward={bad}:nan_reward")
    with pytest.raises(ConfigError, match="nan_reward.*finite"):
        task.score(task.problems("eval", 1)[0], "\\boxed{1}")
    with pytest.raises(ConfigError, match="one number per reward"):
        get_task(f"add2?reward={bad}:nan_reward&reward_weights=[1, 2]")
