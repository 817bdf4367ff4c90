"""Grading time on HumanEval's 164 canonical solutions: exit-status grading (before) vs the
function-server grader (now: candidate and tests in separate processes, plain data between).

    python benchmarks/code_grading.py [--out benchmarks/code_grading.json]

"Before" is the grader rltf had until the hardening issue: the solution and the tests in one
program whose exit status 0 meant "passed" (kept here only to measure it; it can be fooled).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name, matmul_flops  # noqa: E402

from rltf.tasks import get_task  # noqa: E402
from rltf.tasks.code_task import build_solution  # noqa: E402
from rltf.tasks.sandbox import SandboxLimits, run_function_tests, run_python  # noqa: E402


def exit_status_grade(problem, code, limits):
    program = build_solution(problem, code) + "\n" + problem.metadata["tests"].rstrip()
    program += f"\n\ncheck({problem.metadata['entry_point']})\n"
    return run_python(program, limits).passed


def function_server_grade(problem, code, limits):
    return run_function_tests(build_solution(problem, code), problem.metadata["entry_point"], problem.metadata["tests"],
                              problem.metadata.get("prompt_code", ""), limits).passed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    task, limits = get_task("humaneval"), SandboxLimits()
    problems = task.problems("all")
    codes = [p.metadata["prompt_code"] + p.answer for p in problems]
    result = {"machine": f"{cpu_name()}, Python {platform.python_version()}",
              "matmul_fp32_tflops": matmul_flops("float32") / 1e12, "problems": len(problems)}
    print(f"{result['machine']}; fp32 matmul peak {result['matmul_fp32_tflops']:.2f} TFLOP/s")
    for name, grade in (("exit_status_before", exit_status_grade), ("function_server_now", function_server_grade)):
        times, passed = [], 0
        for _ in range(args.repeats):
            t = time.perf_counter()
            passed = sum(grade(p, c, limits) for p, c in zip(problems, codes))
            times.append(time.perf_counter() - t)
        result[name] = {"seconds_per_problem": statistics.median(times) / len(problems), "passed": passed}
        print(f"{name:22s} {1000 * result[name]['seconds_per_problem']:.1f} ms/problem, {passed}/{len(problems)} pass")
    result["ratio_now_over_before"] = (result["function_server_now"]["seconds_per_problem"]
                                       / result["exit_status_before"]["seconds_per_problem"])
    print(f"now / before: {result['ratio_now_over_before']:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
