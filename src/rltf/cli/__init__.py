"""The ``rltf`` command line: tasks, eval, serve, demo (and the trainers of later modules)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from transformers.utils import logging as hf_logging

from rltf.cli import (annotate_cmd, compare_cmd, demo_cmd, eval_cmd, eval_rm_cmd, label_studio_cmd, serve_cmd, tasks_cmd,
                      train_cmd)
from rltf.errors import RltfError

COMMANDS = ("tasks", "eval", "annotate", "label-studio", "train", "eval-rm", "compare", "serve", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rltf", description="Train language models from natural-language feedback.")
    parser.add_argument("--verbose", "-v", action="store_true", help="show library warnings and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (tasks_cmd, eval_cmd, annotate_cmd, label_studio_cmd, train_cmd, eval_rm_cmd, compare_cmd, serve_cmd, demo_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except RltfError as err:
        print(f"rltf: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rltf: interrupted", file=sys.stderr)
        return 130


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
