"""docs/EXTENDING.md's worked example is the shipped file, and every command in it runs."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOC = (ROOT / "docs" / "EXTENDING.md").read_text()


@pytest.mark.parametrize("name", ["vowels.py", "best_of_n.py"])
def test_the_documented_file_is_the_shipped_file(name):
    block = re.search(rf"<!-- example: examples/{re.escape(name)} -->\n```python\n(.*?)```", DOC, re.S).group(1)
    assert block == (ROOT / "examples" / name).read_text()


COMMANDS = [line for block in re.findall(r"<!-- commands: run in examples/ -->\n```bash\n(.*?)```", DOC, re.S)
            for line in block.splitlines() if line.startswith("rltf ")]


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


def test_a_method_from_parts_trains_and_resumes_like_a_built_in_one(tmp_path):
    """examples/best_of_n.py: only answers that reached min_reward become SFT rows; the loss is their
    NLL summed over tokens and divided by the answers sampled; a step moves the weights; resume works."""
    import torch

    from helpers import collect, parity_grader
    from rltf.algorithms import gather_logprobs
    from rltf.methods import build_trainer, get_method, make_config

    method = get_method(f"{ROOT / 'examples' / 'best_of_n.py'}:BEST_OF_N")
    assert method.name == "best-of-n" and make_config("best-of-n").min_reward == 1.0
    over = dict(model="tiny-random", task="add2", prompts_per_step=2, group_size=4, max_new_tokens=8, eval_n=4,
                eval_every=0, eval_at_start=False, save_every=1, learning_rate=1e-2, output_dir=str(tmp_path / "a"))
    tr = build_trainer(make_config("best-of-n", overrides=over), console=lambda s: None)
    tr.task.grade = parity_grader
    batch, metrics, n = collect(tr, tr.task.problems("train", 2), seed=0)
    assert n == 8 and len(batch) == round(metrics["sft/kept_fraction"] * 8) and set(batch.kind) <= {"sft"}
    assert len(batch) > 0
    for b in range(len(batch)):  # every kept answer has an even length: parity_grader's reward 1
        text = tr.tokenizer.decode(batch.completion_ids[b][batch.completion_mask[b]], skip_special_tokens=True)
        assert len(text) % 2 == 0
    tr.model.train()
    loss, _ = tr.method.terms["sft"].loss(tr, batch)
    with torch.no_grad():
        logits, _ = tr.forward(batch)
        by_hand = -(gather_logprobs(logits, batch.completion_ids) * batch.completion_mask).sum() / len(batch)
    assert abs(loss.item() - by_hand.item()) < 1e-4
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    path = tr.save()
    resumed = build_trainer(make_config("best-of-n", overrides=over), console=lambda s: None, resume=str(path))
    assert resumed.step == 1 and all(torch.equal(a, b) for a, b in zip(tr.model.parameters(),
                                                                      resumed.model.parameters()))
