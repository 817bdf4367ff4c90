"""Tasks: problems with hidden ground truth, chat prompts (with few-shot examples), and graders."""
from rltf.tasks.base import Problem, Score, Task
from rltf.tasks.boxed import last_boxed
from rltf.tasks.registry import PRESETS, get_task, parse_spec
from rltf.tasks import presets  # noqa: F401  isort: skip  (registers the built-in presets and file kinds)

__all__ = ["Problem", "Score", "Task", "get_task", "parse_spec", "last_boxed", "PRESETS"]
