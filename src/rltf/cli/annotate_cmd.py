"""``rltf annotate``: generate answers (or read yours) and write critique + span records as JSONL.

Resumable: records already in --output are skipped. A provider failure is counted, never written.
"""
from __future__ import annotations

import sys

from rltf.cli import add_command
from rltf.cli.common import add_feedback_args, add_model_args, bounded, build_span_feedback_from_args, load_backend
from rltf.errors import DataError
from rltf.rollout import SamplingParams
from rltf.spans.annotate import AnnotationWriter, annotate
from rltf.tasks import get_task
from rltf.tasks.base import Problem, Score
from rltf.tasks.jsonl import read_records, require
from rltf.tasks.open_ended import OpenEndedTask


def register(sub) -> None:
    p = add_command(sub, "annotate", description=__doc__)
    p.add_argument("--task", default="fact_summary", help="task spec (see `rltf tasks`)")
    p.add_argument("--input", help="JSONL of your own answers: {prompt, answer, reference?, id?} (no generation)")
    p.add_argument("--n", type=bounded(int, ge=1), default=64, help="problems to answer")
    p.add_argument("--samples", type=bounded(int, ge=1), default=1, help="answers per problem")
    p.add_argument("--split", default="train", choices=["train", "eval", "all"], help="which problems")
    p.add_argument("--seed", type=bounded(int, ge=0), default=0, help="problem order and sampling seed")
    p.add_argument("--temperature", type=bounded(float, ge=0), default=1.0, help="sampling temperature of the answers")
    p.add_argument("--top-p", type=bounded(float, gt=0, le=1), default=1.0, help="nucleus sampling")
    p.add_argument("--max-new-tokens", type=bounded(int, ge=1), help="answer length budget (default: the task's)")
    p.add_argument("--chunk", type=bounded(int, ge=1), default=32, help="problems answered and written per batch")
    p.add_argument("--output", required=True, help="JSONL file of records (appended to; resumable)")
    add_model_args(p)
    add_feedback_args(p, default="critic", spans=True)
    p.set_defaults(func=run)


def _own_answers(path: str):
    problems, answers, ids = [], [], []
    for where, r in read_records(path):
        prompt, answer = require(r, ("prompt", "question"), where), require(r, ("answer", "response"), where)
        if not isinstance(answer, str):
            raise DataError(f"{where}: 'answer' must be a string")
        pid = str(r.get("id", where))
        problems.append(Problem(pid, str(prompt), str(r.get("reference") or ""), {}))
        answers.append(answer)
        ids.append(pid)
    return OpenEndedTask(problems, f"file:{path}", "user answers"), problems, answers, ids


def run(args) -> int:
    writer = AnnotationWriter(args.output)
    failures: dict[str, int] = {}
    written = skipped = 0
    backend = None
    if args.input:
        task, problems, answers, ids = _own_answers(args.input)
        backend = None if args.feedback in ("critic", "judge") else load_backend(args, expected_tokens=len(ids) * 256)
        provider = build_span_feedback_from_args(args, backend)
        keep = [k for k, i in enumerate(ids) if i not in writer.done]
        skipped = len(ids) - len(keep)
        unscored = Score(0.0, False, True, "not scored (user answer)")
        for lo in range(0, len(keep), args.chunk):
            part = keep[lo:lo + args.chunk]
            records, failed = annotate(task, [problems[k] for k in part], [answers[k] for k in part], provider,
                                       ids=[ids[k] for k in part], scores=[unscored] * len(part),
                                       provenance={"source": args.input})
            writer.write(records)
            written += len(records)
            _add(failures, failed)
    else:
        task = get_task(args.task)
        backend = load_backend(args, expected_tokens=args.n * args.samples * (args.max_new_tokens or task.max_new_tokens))
        provider = build_span_feedback_from_args(args, backend)
        params = SamplingParams(max_new_tokens=args.max_new_tokens or task.max_new_tokens,
                                temperature=args.temperature, top_p=args.top_p)
        problems = task.problems(args.split, args.n, seed=args.seed)
        for lo in range(0, len(problems), args.chunk):
            part = problems[lo:lo + args.chunk]
            todo = [(p, k) for p in part for k in range(args.samples) if f"{p.id}#{k}" not in writer.done]
            skipped += len(part) * args.samples - len(todo)
            if not todo:
                continue
            gens = backend.generate([task.messages(p) for p, _ in todo], params, seed=args.seed * 7_919 + lo)
            records, failed = annotate(task, [p for p, _ in todo], [g.text for g in gens], provider,
                                       ids=[f"{p.id}#{k}" for p, k in todo],
                                       provenance={"policy": args.model, "seed": args.seed,
                                                   "temperature": args.temperature})
            writer.write(records)
            written += len(records)
            _add(failures, failed)
            print(f"annotated {lo + len(part)}/{len(problems)} problems", file=sys.stderr, flush=True)
    n_failed = sum(failures.values())
    print(f"wrote {written} records to {args.output} ({skipped} already there, {n_failed} provider failures"
          + (f": {failures}" if failures else "") + ")")
    return 0


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v
