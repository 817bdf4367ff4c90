"""``rltf label-studio export | import | agreement``: human feedback through Label Studio.

export     answers to review -> Label Studio tasks (prompt, answer, metadata) with pre-annotations
           from a span feedback provider, plus the labeling configuration; optionally creates the
           project and imports the tasks on a running server (--url, token from --token-env)
import     Label Studio's JSON export (or Argilla records, doccano or Prodigy JSONL) -> annotation
           records (the format of `rltf annotate`), every problem reported on its own line
agreement  span F1 between annotators (the matching of `rltf eval-rm`), verdicts, critique lengths,
           label counts; and against programmatic or judge feedback (--reference)
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from rltf.cli import add_command
from rltf.cli.common import (add_feedback_args, add_model_args, bounded, build_span_feedback_from_args, load_backend,
                             write_json)
from rltf.errors import ConfigError, DataError, SpanError
from rltf.feedback.base import Critique, Span
from rltf.feedback.records import read_annotations
from rltf.rollout import SamplingParams
from rltf.spans.agreement import agreement
from rltf.spans.human import FORMATS, MAX_EXPORT_BYTES, read_export, write_records_atomic
from rltf.spans.labelstudio import LABELING_CONFIG, LabelStudioClient, make_tasks
from rltf.tasks import get_task
from rltf.tasks.jsonl import read_records, require

SHOWN_PROBLEMS = 50


def register(sub) -> None:
    p = add_command(sub, "label-studio", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    ex = verbs.add_parser("export", help="answers to review -> Label Studio tasks with pre-annotations")
    source = ex.add_mutually_exclusive_group(required=True)
    source.add_argument("--episodes", help="JSONL of answers: {prompt, answer, critique?, spans?, ...} "
                                           "(e.g. `rltf annotate` output, whose critique and spans become suggestions)")
    source.add_argument("--task", help="generate answers to this task's problems with --model (see `rltf tasks`)")
    ex.add_argument("--n", type=bounded(int, ge=1), default=32, help="problems to answer (--task)")
    ex.add_argument("--split", default="train", choices=["train", "eval", "all"], help="which problems (--task)")
    ex.add_argument("--seed", type=bounded(int, ge=0), default=0, help="problem order and sampling seed (--task)")
    ex.add_argument("--temperature", type=bounded(float, ge=0), default=1.0, help="sampling temperature (--task)")
    ex.add_argument("--suggest", action=argparse.BooleanOptionalAction, default=True,
                    help="pre-annotate with --feedback (with --task) or the records' own critique and spans")
    ex.add_argument("--out", required=True, help="Label Studio tasks (JSON); the labeling config goes beside it (.xml)")
    ex.add_argument("--url", help="a running Label Studio server: create a project there and import the tasks")
    ex.add_argument("--token-env", default="LABEL_STUDIO_API_KEY",
                    help="environment variable holding the Label Studio token (personal access token or legacy)")
    ex.add_argument("--title", default="rltf feedback", help="project title (--url)")
    add_model_args(ex)
    add_feedback_args(ex, default="critic", spans=True)
    ex.set_defaults(func=run_export)

    im = verbs.add_parser("import", help="an annotation tool's export -> annotation records (JSONL)")
    im.add_argument("export", help="Label Studio JSON export, Argilla records JSON, doccano or Prodigy JSONL")
    im.add_argument("--out", required=True, help="annotation records (JSONL), written all at once")
    im.add_argument("--format", default="auto", choices=("auto",) + FORMATS, help="the export's tool")
    im.add_argument("--prompt-key", default="prompt", help="field of an item holding the prompt")
    im.add_argument("--answer-key", default="answer", help="field of an item holding the answer under review")
    im.add_argument("--max-bytes", type=bounded(int, ge=1), default=MAX_EXPORT_BYTES, help="largest export read")
    im.add_argument("--strict", action="store_true", help="exit 2 (writing nothing) if any record has a problem")
    im.set_defaults(func=run_import)

    ag = verbs.add_parser("agreement", help="agreement between annotators (and with other feedback)")
    ag.add_argument("records", help="annotation records (JSONL) with several annotators per answer")
    ag.add_argument("--reference", help="records of programmatic or judge feedback on the same answers "
                                        "(`rltf annotate --input`)")
    ag.add_argument("--iou", type=bounded(float, gt=0, le=1), default=0.5, help="overlap for two spans to match")
    ag.add_argument("--output", help="write the report as JSON")
    ag.set_defaults(func=run_agreement)


# -- export ----------------------------------------------------------------------------------------
def _items_from_file(path: str, suggest: bool) -> tuple[list[dict], list[Critique | None]]:
    items, critiques = [], []
    for where, r in read_records(path):
        prompt, answer = require(r, ("prompt", "question"), where), require(r, ("answer", "response"), where)
        if not isinstance(prompt, str) or not isinstance(answer, str) or not answer.strip():
            raise DataError(f"{where}: prompt and answer must be non-empty text")
        items.append({"prompt": prompt, "answer": answer, "rltf_id": str(r.get("id", where)),
                      **{k: r[k] for k in ("task", "problem_id", "reference") if r.get(k) is not None}})
        critique = None
        if suggest and (r.get("critique") or r.get("spans")):
            try:
                spans = [Span.coerce(s) for s in r.get("spans") or []]
            except SpanError as err:
                raise DataError(f"{where}: {err}") from None
            critique = Critique(str(r.get("critique") or ""), spans, source="file")
        critiques.append(critique)
    if not items:
        raise DataError(f"{path}: no answers to export")
    return items, critiques


def _items_from_task(args) -> tuple[list[dict], list[Critique | None], str]:
    task = get_task(args.task)
    backend = load_backend(args, expected_tokens=args.n * task.max_new_tokens)
    problems = task.problems(args.split, args.n, seed=args.seed)
    params = SamplingParams(max_new_tokens=task.max_new_tokens, temperature=args.temperature)
    gens = backend.generate([task.messages(p) for p in problems], params, seed=args.seed)
    answers = [g.text for g in gens]
    items = [{"prompt": task.format_question(p), "answer": a, "task": task.name, "problem_id": p.id,
              "reference": p.answer, "rltf_id": f"{p.id}#0"} for p, a in zip(problems, answers)]
    critiques: list[Critique | None] = [None] * len(items)
    if args.suggest:
        provider = build_span_feedback_from_args(args, backend)
        critiques = provider.critique_many([(task, p, a, task.score(p, a)) for p, a in zip(problems, answers)])
    return items, critiques, getattr(args, "feedback", "rltf")


def run_export(args) -> int:
    if args.episodes:
        items, critiques = _items_from_file(args.episodes, args.suggest)
        version = f"file:{args.episodes}"
    else:
        items, critiques, version = _items_from_task(args)
    tasks = make_tasks(items, critiques, model_version=version)
    write_json(args.out, tasks)
    config_path = os.path.splitext(args.out)[0] + ".xml"
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(LABELING_CONFIG)
    suggested = sum(1 for t in tasks if t.get("predictions"))
    print(f"wrote {len(tasks)} tasks ({suggested} with suggestions) to {args.out}; labeling config: {config_path}")
    if args.url:
        token = os.environ.get(args.token_env)
        if not token:
            raise ConfigError(f"--url needs a Label Studio token in ${args.token_env}")
        client = LabelStudioClient(args.url, token)
        project = client.create_project(args.title)
        count = client.import_tasks(project, tasks)
        print(f"created project {project} at {args.url} and imported {count} tasks: {args.url}/projects/{project}")
    return 0


# -- import ----------------------------------------------------------------------------------------
def run_import(args) -> int:
    records, problems = read_export(args.export, args.format, prompt_key=args.prompt_key, answer_key=args.answer_key,
                                    max_bytes=args.max_bytes)
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"problem: {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"problem: ... and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    counts = Counter(p.reason for p in problems)
    summary = f"{len(problems)} problems" + (f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
                                            if counts else "")
    if args.strict and problems:
        raise DataError(f"{args.export}: {summary}; nothing written (--strict)")
    if not records:
        raise DataError(f"{args.export}: no usable annotation; {summary}")
    write_records_atomic(records, args.out)
    annotators = len({r["annotator"] for r in records})
    print(f"read {len(records) + len(problems)} annotations: wrote {len(records)} records from {annotators} "
          f"annotators to {args.out}; {summary} left out")
    return 0


# -- agreement -------------------------------------------------------------------------------------
def run_agreement(args) -> int:
    report = agreement(read_annotations(args.records),
                       read_annotations(args.reference) if args.reference else (), min_iou=args.iou)
    between = report["between_annotators"]
    print(f"{report['records']} records, {report['items']} answers, "
          f"{report['items_with_several_annotators']} with several annotators")
    print(f"between annotators: span F1 {_fmt(between['span_f1'])} over {between['pairs']} pairs "
          f"(positive {_fmt(between['span_f1_by_label']['positive'])}, negative "
          f"{_fmt(between['span_f1_by_label']['negative'])}); verdicts agree {_fmt(between['verdict_agreement'])} "
          f"of {between['verdict_pairs']}")
    for name, a in report["annotators"].items():
        print(f"  {name}: {a['records']} records, critique {_fmt(a['critique_chars_mean'], 0)} chars, "
              f"{_fmt(a['spans_per_record'], 1)} spans/record, labels {a['labels']}")
    if "against_reference" in report:
        ref = report["against_reference"]
        print(f"people vs {args.reference}: span F1 {_fmt(ref['span_f1'])} over {ref['pairs']} answers "
              f"({ref['items_without_reference']} records without a reference)")
    if args.output:
        write_json(args.output, report)
    return 0


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
