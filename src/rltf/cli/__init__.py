"""The ``rltf`` command line: tasks, eval, serve, demo (and the trainers of later modules)."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from rltf.errors import RltfError

# Each command: its module and one-line help. Only the module of the command being run is imported,
# so `rltf --help` and `rltf tasks` do not wait for torch and transformers (~5 s here).
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("tasks_cmd", "list task presets and task kinds"),
    "eval": ("eval_cmd", "evaluate a model on a task (single-turn accuracy, K-round feedback)"),
    "annotate": ("annotate_cmd", "annotate answers with a critique and labelled spans (Text2Grad data)"),
    "label-studio": ("label_studio_cmd", "human feedback through Label Studio: export tasks, import annotations"),
    "train": ("train_cmd", "train a policy with one of the methods, or a span reward model"),
    "eval-rm": ("eval_rm_cmd", "score a span reward model on held-out annotation records"),
    "compare": ("compare_cmd", "compare methods at equal generated-token budgets over seeds"),
    "serve": ("serve_cmd", "serve a local model as an OpenAI-compatible endpoint"),
    "demo": ("demo_cmd", "train the default model from critiques for a few minutes and show the effect"),
}


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A command's parser, with its help from :data:`COMMANDS` (for the commands' ``register``)."""
    return sub.add_parser(name, help=COMMANDS[name][1], **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``command`` None), or one whose other commands have only their help line."""
    parser = argparse.ArgumentParser(prog="rltf", description="Train language models from natural-language feedback.")
    parser.add_argument("--verbose", "-v", action="store_true", help="show library warnings and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_line) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"rltf.cli.{module}").register(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # the options before it take no value
    try:
        if command in COMMANDS:  # a command may turn plug-in names into registered ones first (train FILE.py:NAME)
            module = importlib.import_module(f"rltf.cli.{COMMANDS[command][0]}")
            argv = module.prepare_argv(argv) if hasattr(module, "prepare_argv") else argv
        parser = build_parser(command if command in COMMANDS else "")
        args = parser.parse_args(argv)
        if not args.verbose:
            _quiet_libraries()
        return int(args.func(args) or 0)
    except RltfError as err:
        print(f"rltf: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("rltf: interrupted", file=sys.stderr)
        return 130


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if "transformers" not in sys.modules:  # read when transformers is first imported
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        return
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
