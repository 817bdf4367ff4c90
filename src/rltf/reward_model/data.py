"""Annotation records -> the reward model's chat prompt and JSON target."""
from __future__ import annotations

from rltf.spans.align import read_span
from rltf.spans.parse import format_dual_feedback

RM_SYSTEM = ("You are a feedback model. Read the task and the response. Reply with JSON only: "
             '{"textual_feedback": "<critique>", "good_spans": ["<exact phrase of the response>", ...], '
             '"poor_spans": ["<exact phrase of the response>", ...]}')
RM_USER = "Task:\n{prompt}\n\nResponse:\n{answer}"


def rm_messages(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": RM_SYSTEM},
            {"role": "user", "content": RM_USER.format(prompt=prompt.strip(), answer=answer.strip())}]


def rm_target(record: dict) -> str:
    """The JSON the model learns to write: the critique, then each labelled quote once, in order."""
    seen, spans = set(), []
    for span in record["spans"]:
        quote, label, _ = read_span(span)
        if (quote, label) not in seen:
            seen.add((quote, label))
            spans.append((quote, label))
    return format_dual_feedback(record["critique"], spans)
