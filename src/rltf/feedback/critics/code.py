"""Critic for code: the failing test with its assertion, or the line of the solution that raised."""
from __future__ import annotations

from rltf.feedback.base import Critique, Span
from rltf.feedback.critics.common import GENERIC_WRONG, finish


def _line_span(answer: str, line: str) -> list[Span]:
    if not line:
        return []
    start = answer.rfind(line)
    return [Span(line, "negative", start)] if start >= 0 else []


def critique_code(task, problem, answer: str, score) -> Critique:
    truth = ""  # tests are public for code tasks: the leak guard does not apply to assertions
    report = task.test_report(problem, answer)
    if report is None:
        return finish("Your answer has no Python code block: write the complete function in ```python ... ```.",
                      [], truth)
    if report.passed:
        return finish(GENERIC_WRONG, [], truth)
    if report.status == "timeout":
        return finish(f"Your code did not finish within the time limit ({report.error}): look for an infinite "
                      "loop or a far too slow algorithm.", _line_span(answer, report.solution_line), truth)
    if report.in_solution or (report.solution_line and not report.error.startswith("AssertionError")):
        text = f"Your code raises {report.error} at the line `{report.solution_line or report.failing_text}`."
        return finish(text, _line_span(answer, report.solution_line or report.failing_text), truth)
    if report.error.startswith("AssertionError") and report.failing_text:
        return finish(f"Your function fails the test `{report.failing_text}`.", [], truth)
    return finish(f"Running the tests failed with {report.error}.", _line_span(answer, report.solution_line), truth)
