"""The package reads as its pipeline: a module imports only earlier stages (and the shared modules),
and no module imports itself back through others (no import cycle, inside a stage either).

Order: shared (errors, plugins, stats, _lazy) -> models -> tasks -> feedback -> spans -> rollout ->
algorithms -> engine -> methods -> eval -> serve -> cli. Imports inside functions count, and so do
imports under ``if TYPE_CHECKING`` and a package's lazy exports (the modules its ``lazy_exports``
names, as strings).
"""
import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "rltf"
SHARED = {"errors", "plugins", "stats", "_lazy"}
ORDER = ["models", "tasks", "feedback", "spans", "rollout", "algorithms", "engine", "methods", "eval", "serve", "cli"]


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
            # `from rltf.engine import checkpoint` imports the submodule, not the package's own names
            submodules = [a.name for a in node.names
                          if SRC.joinpath(*node.module.split(".")[1:], a.name + ".py").exists()]
            if len(submodules) < len(node.names):
                yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{name}") for name in submodules)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("rltf."))


MODULES = sorted(p for p in SRC.rglob("*.py") if "sandbox_programs" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the rltf modules it imports (a submodule named in a `from` import, or the package)."""
    known = {module_name(p) for p in MODULES}
    graph = {}
    for path in MODULES:
        targets = set()
        for _, m in imports(path):
            while m not in known and "." in m:
                m = m.rsplit(".", 1)[0]
            if m in known:
                targets.add(m)
        graph[module_name(path)] = targets - {module_name(path)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_stage_is_known():
    assert {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("_")} <= set(ORDER) | {"data"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_later_stage(path):
    own = stage_of(".".join(path.relative_to(SRC).with_suffix("").parts))
    later = [f"line {n}: {m}" for n, m in imports(path) if stage_of(m.removeprefix("rltf.")) > own]
    assert not later, f"{path.relative_to(SRC)} imports a later stage: {later}"


def test_no_import_cycle_anywhere():
    assert cycles(import_graph()) == []


def test_the_engine_knows_no_method():
    """No module of the engine names a method, a method's module or a method's loss term."""
    from rltf.methods import METHODS

    names = set(METHODS) | {"sdpo", "ppo", "critique", "rltf_trainer"}
    for path in (SRC / "engine").glob("*.py"):
        text = path.read_text()
        for name in names:
            assert not re.search(rf"[\"']{re.escape(name)}[\"']", text), f"{path.name} names the method {name!r}"
        assert not [m for _, m in imports(path) if m.startswith("rltf.methods")], f"{path.name} imports a method"


def test_the_checks_catch_a_backward_import_and_a_cycle(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from rltf.methods.rltf import collect\n")
    assert [m for _, m in imports(bad)] == ["rltf.methods.rltf"]
    assert stage_of("methods.rltf") > stage_of("tasks.base")
    lazy = tmp_path / "y.py"
    lazy.write_text("from rltf._lazy import lazy_exports\n__getattr__, __dir__ = lazy_exports(__name__, "
                    "{'Engine': 'rltf.engine.engine', 'note': 'rltf is fun'})\n")
    assert sorted(m for _, m in imports(lazy)) == ["rltf._lazy", "rltf.engine.engine"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
