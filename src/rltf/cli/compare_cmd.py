"""``rltf compare --config compare.yaml [--set key=value]``: methods side by side at equal token budgets."""
from __future__ import annotations

import argparse

import yaml

from rltf.cli import add_command
from rltf.cli.common import duration
from rltf.cli.train_cmd import parse_sets
from rltf.errors import ConfigError
from rltf.eval import compare as compare_module
from rltf.eval.compare import compare, load_compare_config
from rltf.eval.compare_report import markdown


def register(sub) -> None:
    p = add_command(sub, "compare", description=compare_module.__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="compare file (YAML), e.g. recipes/compare/cpu-add2.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key (repeatable); dotted keys reach into common/methods, e.g. common.eval_n=16")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the report (tables, tests, curves) from the runs finished so far")
    p.add_argument("--report-dir", help="write the report here instead of output_dir (e.g. a report on some seeds: "
                                        "--report-only --set 'seeds=[1, 2]' --report-dir DIR)")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN[,PATTERN]",
                   help="train only the runs these globs match, by name, NAME-sSEED or TASK/NAME-sSEED "
                        "(e.g. --only rltf-sd,grpo or --only 'fact_summary/*-s1'); the report is on every finished run")
    p.add_argument("--time-limit", type=duration, metavar="DURATION",
                   help="start a run only if its estimate at the finished runs' pace fits in what is left of this "
                        "time (e.g. 2h, 45m); a started run is not stopped. With a study spread over sittings, "
                        "pair it with --only '*-sSEED' to keep the order seed-major")
    p.set_defaults(func=run)


def run(args) -> int:
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        parse_sets([item])  # same KEY=VALUE validation as rltf train
        overrides[key.strip()] = yaml.safe_load(value) if value != "" else ""
    cfg = load_compare_config(args.config, overrides)
    only = [p.strip() for item in args.only for p in item.split(",") if p.strip()]
    if args.report_only and (only or args.time_limit is not None):
        raise ConfigError("--only and --time-limit choose the runs a sitting trains; --report-only trains none")
    summary = compare(cfg, console=lambda s: print(s, flush=True), run=not args.report_only,
                      report_dir=args.report_dir, only=only or None, time_limit_s=args.time_limit)
    print(markdown(summary))
    print(f"wrote {args.report_dir or cfg.output_dir}/results.md, results.json, curves.png")
    return 0
