"""Instruction following with verifiable constraints (IFEval, Zhou et al. 2023; METHODS §4.2).

A problem is a short writing request on a topic plus one to three instructions, each an IFEval
instruction type with its arguments. The checkers implement the semantics of lm-eval's IFEval
(``lm_eval/tasks/ifeval/instructions.py``, ``check_following``) and use its instruction wording,
because lm-eval's own checkers need NLTK data that cannot be downloaded here. Two counts differ
from lm-eval by necessity: sentences are split with IFEval's own regex splitter
(``instructions_util.split_into_sentences``) instead of NLTK's punkt model, and capital words are
the regex words ``\\w+`` that are upper case instead of NLTK word tokens. English is checked for the
case instructions as lm-eval does, with langdetect (seeded, so a verdict is the same every time).

Every checker also says *where* a response breaks its instruction (:meth:`Instruction.violations`:
character ranges of the offending text, e.g. each comma, the words past a word limit, each
capitalised word), which the task's critic turns into a critique and negative spans, and how to
repair a response with the smallest edit (:meth:`Instruction.repair`), which the feedback-use warm
start trains on (:meth:`ConstraintsTask.revise`).

Metrics: ``strict`` (prompt level: every instruction followed), ``instruction_strict`` (the share of
instructions followed) and ``instruction_loose`` (the same on IFEval's loose variants of the response:
its first line, its last line or both removed, asterisks removed). The reward is the share of
instructions followed; ``correct`` means all of them.

Modules: ``text`` (IFEval's word and sentence measures), ``instructions`` (the registry and
checking or repairing a response), ``counts`` and ``formats`` (the instruction types), ``task``.
"""
from rltf.tasks.constraints.base import Instruction, Violation
from rltf.tasks.constraints.instructions import (CONFLICTS, DEFAULT_KINDS, INSTRUCTIONS, follows, loose_variants,
                                                 repair_all)
from rltf.tasks.constraints.task import ConstraintsTask
from rltf.tasks.constraints.text import count_words, is_english, split_into_sentences

__all__ = ["CONFLICTS", "DEFAULT_KINDS", "INSTRUCTIONS", "ConstraintsTask", "Instruction", "Violation", "count_words",
           "follows", "is_english", "loose_variants", "repair_all", "split_into_sentences"]
