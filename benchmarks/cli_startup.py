"""How long `rltf` takes to answer before any work: `--help` of each command, and `rltf tasks`.

    python benchmarks/cli_startup.py [--src DIR] [--repeats 5] [--out benchmarks/cli_startup.json]

Each command runs ``--repeats`` times in a fresh interpreter (``python -m rltf.cli ...``); the median
wall time is reported, with the heavy libraries the command imported. ``--src`` runs another
checkout's ``src/`` with this environment (e.g. a ``git worktree`` of an earlier commit), so a
before/after pair shares the machine and its load; the ratio is what to compare, since the absolute
times depend on the machine and on what else it runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [["--help"], ["tasks"], ["eval", "--help"], ["serve", "--help"], ["annotate", "--help"],
            ["label-studio", "--help"], ["eval-rm", "--help"], ["train", "--help"], ["train", "grpo", "--help"],
            ["compare", "--help"], ["demo", "--help"]]
HEAVY = ("torch", "transformers", "vllm")
PROBE = ("import runpy, sys\nsys.argv = ['rltf', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('rltf.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('HEAVY ' + ','.join(m for m in %r if m in sys.modules) + '\\n')\n" % (HEAVY,))


def time_command(args: list[str], env: dict[str, str], repeats: int) -> dict:
    times, heavy = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
        times.append(time.perf_counter() - start)
        heavy = next((line[6:] for line in r.stderr.splitlines() if line.startswith("HEAVY ")), "?")
        if r.returncode != 0 or not r.stdout.strip():
            raise SystemExit(f"rltf {' '.join(args)} failed: {r.stderr[-500:]}")
    return {"command": "rltf " + " ".join(args), "median_s": statistics.median(times), "runs_s": times,
            "heavy_imports": heavy.split(",") if heavy else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", help="another checkout's src/ directory (default: the installed rltf)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/cli_startup.json")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    rows = []
    for command in COMMANDS:
        row = time_command(command, env, args.repeats)
        rows.append(row)
        print(f"{row['command']:<24} {row['median_s']:6.2f} s  imports: {', '.join(row['heavy_imports']) or '-'}")
    result = {"src": args.src or "installed", "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "python": sys.version.split()[0], "repeats": args.repeats, "commands": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
