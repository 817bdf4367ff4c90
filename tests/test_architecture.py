"""The package reads as its pipeline: a module imports only earlier stages (and the shared modules).

Order: shared (errors, plugins, stats, _lazy) -> models -> tasks -> feedback -> spans -> rollout ->
algorithms -> trainers -> eval -> serve -> cli. Imports inside functions count too, and so do a package's lazy exports (the modules its
``lazy_exports`` names, as strings).
"""
import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "rltf"
SHARED = {"errors", "plugins", "stats", "_lazy"}
ORDER = ["models", "tasks", "feedback", "spans", "rollout", "algorithms", "trainers", "eval", "serve", "cli"]


def stage_of(module: str) -> int:
    """-1 for the shared modules, else the position in ORDER (the package's own files are the CLI's)."""
    head = module.split(".")[0]
    if head in SHARED:
        return -1
    return ORDER.index(head) if head in ORDER else len(ORDER) - 1


def imports(path: Path):
    tree = ast.parse(path.read_text())
    lazy = any(isinstance(n, ast.Name) and n.id == "lazy_exports" for n in ast.walk(tree))
    for node in ast.walk(tree):
        if lazy and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.fullmatch(r"rltf(\.\w+)+", node.value):  # a module that lazy_exports imports
            yield node.lineno, node.value
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rltf.") and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("rltf."))


MODULES = sorted(p for p in SRC.rglob("*.py") if "sandbox_programs" not in p.parts)


def test_every_stage_is_known():
    assert {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("_")} <= set(ORDER) | {"data"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_later_stage(path):
    own = stage_of(".".join(path.relative_to(SRC).with_suffix("").parts))
    later = [f"line {n}: {m}" for n, m in imports(path) if stage_of(m.removeprefix("rltf.")) > own]
    assert not later, f"{path.relative_to(SRC)} imports a later stage: {later}"


def test_the_check_catches_a_backward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from rltf.trainers.base import Trainer\n")
    assert [m for _, m in imports(bad)] == ["rltf.trainers.base"]
    assert stage_of("trainers.base") > stage_of("tasks.base")
    lazy = tmp_path / "y.py"
    lazy.write_text("from rltf._lazy import lazy_exports\n__getattr__, __dir__ = lazy_exports(__name__, "
                    "{'Trainer': 'rltf.trainers.base', 'note': 'rltf is fun'})\n")
    assert sorted(m for _, m in imports(lazy)) == ["rltf._lazy", "rltf.trainers.base"]
