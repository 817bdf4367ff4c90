"""What the study's probes share: a quiet, greedy engine for a run's recipe (its final checkpoint or
the initial model), and the initial model's held-out answers (the drafts every run revises)."""
from __future__ import annotations

import json
from pathlib import Path

from rltf.methods import build_trainer, make_config
from rltf.models.backend import SamplingParams
from rltf.rollout.evaluation import evaluate


def greedy_trainer(method: str, recipe: Path, checkpoint: Path | None = None):
    """A quiet engine of ``method`` from ``recipe`` (resumed from ``checkpoint``, else the initial
    model) and the greedy sampling of its evaluations -> (engine, params)."""
    trainer = build_trainer(make_config(method, recipe=recipe), console=lambda s: None,
                            resume=str(checkpoint) if checkpoint else None)
    c = trainer.config
    return trainer, SamplingParams(max_new_tokens=c.max_new_tokens or trainer.task.max_new_tokens, temperature=0.0)


def drafts_of(task_dir: Path, recipe: Path) -> dict[str, str]:
    """The initial model's greedy answers to the held-out prompts of this task (computed once, kept
    in TASK_DIR/initial_drafts.json)."""
    path = task_dir / "initial_drafts.json"
    if not path.exists():
        trainer, params = greedy_trainer("grpo", recipe)
        result = evaluate(trainer.task, trainer.rollout_backend(), n=trainer.config.eval_n, seed=12345, params=params,
                          split="eval", keep_first_answers=True)
        path.write_text(json.dumps(result["first_answers"], indent=1) + "\n")
    return json.loads(path.read_text())
