"""``rltf tasks``: the task presets, and with --all every reasoning-gym dataset."""
from __future__ import annotations

from rltf.cli import add_command
from rltf.tasks.registry import FILE_KINDS, PRESETS


def register(sub) -> None:
    p = add_command(sub, "tasks")
    p.add_argument("--all", action="store_true", help="also list every reasoning-gym dataset (rg:NAME)")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = [("name", "source", "size", "parameters / description")]
    for name, preset in PRESETS.items():
        kind = "CPU preset" if preset.cpu_scale else ""
        params = ", ".join(f"{k}={v}" for k, v in preset.params.items() if k != "dataset")
        source = preset.params.get("dataset") or ("reasoning-gym" if "rg" in preset.factory.__name__ else "")
        size = {"math": "55", "humaneval": "164"}.get(name, "procedural")
        rows.append((name, f"{source or name} {kind}".strip(), size, f"{preset.help}" + (f" [{params}]" if params else "")))
    for kind in sorted(FILE_KINDS):
        rows.append((f"{kind}:PATH", "local file", "file", f"{kind} records from JSONL / parquet / datasets dir"))
    rows.append(("rg:DATASET?k=v", "reasoning-gym", "procedural", "any reasoning-gym dataset with parameters"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    if args.all:
        from reasoning_gym.factory import DATASETS

        print("\nreasoning-gym datasets: " + ", ".join(f"rg:{n}" for n in sorted(DATASETS)))
    return 0
