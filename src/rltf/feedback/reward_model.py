"""A trained span reward model as a feedback provider: batched greedy generation, strict then
lenient parsing; an unparseable output is a counted failure that gives no reward."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rltf.errors import ModelLoadError
from rltf.feedback.base import Critique, FeedbackProvider
from rltf.feedback.span_parse import FeedbackParseError, parse_dual_feedback
from rltf.models import load_model_and_tokenizer
from rltf.models.backend import SamplingParams
from rltf.models.hf_backend import HFBackend
from rltf.models.loading import list_checkpoints

RM_SYSTEM = ("You are a feedback model. Read the task and the response. Reply with JSON only: "
             '{"textual_feedback": "<critique>", "good_spans": ["<exact phrase of the response>", ...], '
             '"poor_spans": ["<exact phrase of the response>", ...]}')
RM_USER = "Task:\n{prompt}\n\nResponse:\n{answer}"


def rm_messages(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": RM_SYSTEM},
            {"role": "user", "content": RM_USER.format(prompt=prompt.strip(), answer=answer.strip())}]


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory, or a checkpoint / run directory holding one (latest checkpoint's model/)."""

    path = Path(path)
    if (path / "config.json").exists():
        return path
    if (path / "model" / "config.json").exists():
        return path / "model"
    found = list_checkpoints(path) if path.is_dir() else []
    if found:
        return found[-1] / "model"
    raise ModelLoadError(f"{path}: no reward model here (expected config.json, model/, or checkpoint-N/model)")


class SpanRewardModel(FeedbackProvider):
    name = "reward-model"

    def __init__(self, backend, max_new_tokens: int = 256, name: str = "reward-model"):
        super().__init__()
        self.backend, self.name = backend, name
        self.params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
        self.lenient = 0  # outputs only the lenient parser could read

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: str = "auto", device: str = "auto", batch_size: int = 32,
                        max_new_tokens: int = 256) -> "SpanRewardModel":
        model_dir = resolve_model_dir(path)
        model, tok = load_model_and_tokenizer(str(model_dir), dtype=dtype, device=device)
        return cls(HFBackend(model, tok, batch_size=batch_size), max_new_tokens, name=f"reward-model:{model_dir}")

    def generate(self, prompts: Sequence[str], answers: Sequence[str]) -> list[str]:
        convs = [rm_messages(p, a) for p, a in zip(prompts, answers)]
        return [g.text for g in self.backend.generate(convs, self.params, seed=0)]

    def read(self, output: str) -> tuple[Critique | None, str | None]:
        try:
            parsed = parse_dual_feedback(output)
        except FeedbackParseError as err:
            return None, err.reason
        if parsed.lenient:
            self.lenient += 1
        return Critique(parsed.critique, parsed.spans, source=self.name), None

    def critique(self, task, problem, answer: str, score) -> Critique:
        return self.critique_many([(task, problem, answer, score)])[0]

    def critique_many(self, items: Sequence) -> list[Critique]:
        outputs = self.generate([t.format_question(p) for t, p, _, _ in items], [a for _, _, a, _ in items])
        out = []
        for output in outputs:
            critique, reason = self.read(output)
            self.stats.count(reason)
            out.append(critique or Critique("", [], source=self.name, fallback=reason))
        return out
