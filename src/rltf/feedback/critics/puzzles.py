"""Critics for the paper's puzzles: shortest path, binary matrix, knights and knaves.

Each says what is wrong and where, never what the right answer is.
"""
from __future__ import annotations

import re

from rltf.feedback.base import Critique
from rltf.feedback.critics.common import GENERIC_WRONG, MISSING_BOX, boxed_span, finish, graded_region, span_at

_MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def critique_shortest_path(problem, answer: str, score) -> Critique:
    truth, region = problem.answer.strip(), graded_region(answer, score)
    if region is None:
        return finish(MISSING_BOX, [], truth)
    grid = problem.metadata["matrix"]
    rows, cols = len(grid), len(grid[0])
    start = next((r, c) for r in range(rows) for c in range(cols) if grid[r][c] == "*")
    goal = next((r, c) for r in range(rows) for c in range(cols) if grid[r][c] == "#")
    reachable = bool(problem.metadata.get("solution"))
    words = list(re.finditer(r"\S+", answer[region[0]:region[1]]))
    text_words = [w.group(0).strip(",.;").lower() for w in words]
    if text_words == ["infeasible"]:
        return finish("A path from * to # does exist: look for it again, moving only through open cells.",
                      boxed_span(answer), truth)
    if not reachable:
        return finish("Check whether the destination can be reached at all before listing moves.",
                      boxed_span(answer), truth)
    pos, seen = start, {start}
    for k, (m, word) in enumerate(zip(words, text_words), 1):
        where = span_at(answer, region[0] + m.start(), region[0] + m.end())
        if word not in _MOVES:
            return finish(f"Move {k} (\"{m.group(0)}\") is not a direction: use only up, down, left and right.",
                          [where], truth)
        dr, dc = _MOVES[word]
        nxt = (pos[0] + dr, pos[1] + dc)
        if not (0 <= nxt[0] < rows and 0 <= nxt[1] < cols):
            return finish(f"Move {k} ({word}) leaves the grid.", [where], truth)
        if grid[nxt[0]][nxt[1]] == "X":
            return finish(f"Move {k} ({word}) goes into a blocked cell (X).", [where], truth)
        if nxt in seen:
            return finish(f"Move {k} ({word}) returns to a cell your path already visited, so the path is "
                          "not a shortest one.", [where], truth)
        seen.add(nxt)
        pos = nxt
        if pos == goal and k < len(words):
            return finish(f"Your path reaches # after move {k} but keeps going.", boxed_span(answer), truth)
    if pos != goal:
        return finish(f"Your path ends at row {pos[0] + 1}, column {pos[1] + 1}, which is not the destination #.",
                      boxed_span(answer), truth)
    return finish(f"Your path reaches # in {len(words)} moves, but a shorter path exists.", boxed_span(answer), truth)


def _parse_matrix(text: str) -> list[list[int]] | None:
    rows = []
    for line in text.strip().splitlines():
        cells = re.findall(r"-?\d+", line)
        if cells:
            rows.append([int(c) for c in cells])
    return rows or None


def critique_binary_matrix(problem, answer: str, score) -> Critique:
    truth, region = problem.answer.strip(), graded_region(answer, score)
    if region is None:
        return finish(MISSING_BOX, [], truth)
    solution = problem.metadata["solution"]
    n = len(solution)
    got = _parse_matrix(answer[region[0]:region[1]])
    if got is None or len(got) != n or any(len(r) != n for r in got):
        lengths = sorted({len(r) for r in got or []})
        shape = ("no numbers" if got is None else
                 f"{len(got)} rows of " + (f"{lengths[0]} numbers" if len(lengths) == 1 else "different lengths"))
        return finish(f"Your matrix has {shape}; it must have {n} rows of {n} numbers, one row per line.",
                      boxed_span(answer), truth)
    wrong = [(r, c) for r in range(n) for c in range(n) if got[r][c] != solution[r][c]]
    if not wrong:
        return finish(GENERIC_WRONG, boxed_span(answer), truth)
    cells = ", ".join(f"(row {r + 1}, column {c + 1})" for r, c in wrong[:6])
    more = f" and {len(wrong) - 6} more" if len(wrong) > 6 else ""
    text = (f"{len(wrong)} cell{'s' * (len(wrong) > 1)} of your matrix {'have' if len(wrong) > 1 else 'has'} the "
            f"wrong distance: {cells}{more}. Recount the steps from each of them to the nearest 0.")
    # Negative spans: the lines of the boxed matrix that contain a wrong cell.
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", answer[region[0]:region[1]])
             if re.search(r"\d", m.group(0))]
    bad_rows = sorted({r for r, _ in wrong})
    spans = [span_at(answer, region[0] + lines[r][0], region[0] + lines[r][1]) for r in bad_rows if r < len(lines)]
    return finish(text, spans, truth)


def _truth_value(statement, assign: list[bool]) -> bool:
    op = statement[0]
    if op == "telling-truth":
        return assign[statement[1]]
    if op == "lying":
        return not assign[statement[1]]
    if op == "not":
        return not _truth_value(statement[1], assign)
    if op == "and":
        return all(_truth_value(s, assign) for s in statement[1:])
    if op == "or":
        return any(_truth_value(s, assign) for s in statement[1:])
    if op == "->":
        return (not _truth_value(statement[1], assign)) or _truth_value(statement[2], assign)
    if op == "<=>":
        return _truth_value(statement[1], assign) == _truth_value(statement[2], assign)
    raise ValueError(f"unknown statement operator {op!r}")


def critique_knights_knaves(problem, answer: str, score) -> Critique:
    truth, region = problem.answer.strip(), graded_region(answer, score)
    if region is None:
        return finish(MISSING_BOX, [], truth)
    meta = problem.metadata
    names, terms = meta["names"], meta["knight_knave_terms"]
    knight, knave = terms["knight"], terms["knave"]
    body = answer[region[0]:region[1]]
    assign, where = [], []
    for name in names:
        m = re.search(rf"{re.escape(name)}\s+is\s+an?\s+(\w+)", body, re.I)
        role = m.group(1).lower() if m else None
        if role not in (knight.lower(), knave.lower()):
            return finish(f"Your final answer does not say whether {name} is a {knight} or a {knave}.",
                          boxed_span(answer), truth)
        assign.append(role == knight.lower())
        where.append(span_at(answer, region[0] + m.start(), region[0] + m.end()))
    for i, statement in enumerate(meta["statements"]):
        said_true = _truth_value(statement, assign)
        if said_true != assign[i]:
            role = knight if assign[i] else knave
            value = "true" if said_true else "false"
            text = (f"Your assignment is inconsistent: you call {names[i]} a {role}, but under your assignment "
                    f"{names[i]}'s statement would be {value}, which a {role} cannot say. Check {names[i]} "
                    "and the people that statement mentions.")
            return finish(text, [where[i]], truth)
    return finish(GENERIC_WRONG, boxed_span(answer), truth)
