"""``rltf train METHOD --config recipe.yaml [--set key=value ...] [--resume DIR]``.

Every config field is also a flag (``--learning-rate 1e-5``); precedence: defaults < recipe <
flags < --set.
"""
from __future__ import annotations

import argparse
import dataclasses

import yaml

from rltf.cli import add_command
from rltf.cli.common import write_json
from rltf.cli.eval_rm_cmd import print_rm_result
from rltf.errors import ConfigError
from rltf.engine.config_fields import range_text
from rltf.methods import METHODS, build_trainer, get_method, make_config
from rltf.plugins import is_plugin_spec


def prepare_argv(argv: list[str]) -> list[str]:
    """``rltf train path/to/file.py:NAME ...``: a method of your own (a ``Method`` the file defines and
    registers, docs/EXTENDING.md) becomes a registered method before the parser is built."""
    out = list(argv)
    for k, token in enumerate(out):
        if is_plugin_spec(token) and k and out[k - 1] == "train":
            out[k] = get_method(token).name
    return out


def register(sub) -> None:
    configs = {name: method.config for name, method in METHODS.items()}
    p = add_command(sub, "train", description="Train a policy or a span reward model. Methods: " + ", ".join(configs))
    methods = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    for name, cls in configs.items():
        m = methods.add_parser(name, help=(cls.__doc__ or "").strip().splitlines()[0],
                               description=(cls.__doc__ or "").strip(),
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        m.add_argument("--config", help="YAML recipe (keys are the config fields below)")
        m.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key (repeatable)")
        m.add_argument("--resume", metavar="DIR", help="checkpoint directory, or a run directory (latest checkpoint)")
        group = m.add_argument_group("config fields (also YAML keys)")
        for f in dataclasses.fields(cls):
            if f.name == "method":
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            limits = range_text(f.metadata)
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", default=argparse.SUPPRESS,
                               metavar=str(f.type).replace(" | None", "").upper(),
                               help=f"{f.metadata.get('help', '')}{f' [{limits}]' if limits else ''} "
                                    f"(default: {default})")
        m.set_defaults(func=run)


def parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def overrides_of(args) -> dict:
    """The config values the command line sets: the field flags, then ``--set`` (which wins)."""
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_")}
    overrides.update({k: yaml.safe_load(v) if v != "" else "" for k, v in parse_sets(args.set).items()})
    return overrides


def run(args) -> int:
    overrides = overrides_of(args)
    if not get_method(args.method).policy:  # the span reward model: SFT, then its span F1 on held-out records
        return run_reward_model(args, overrides)
    config = make_config(args.method, args.config, overrides)
    trainer = build_trainer(config, resume=args.resume)
    say = trainer.console  # the first process speaks for a multi-process run
    say(f"training {config.method} on {config.task} with {config.model} "
          f"({config.max_steps} steps, {config.prompts_per_step} prompts x {config.group_size} samples); "
          f"output in {config.output_dir}" + (f" ({trainer.dist.world_size} processes)" if trainer.dist.enabled else ""))
    summary = trainer.train()
    acc = summary["final_accuracy"]
    say(f"done: step {summary['step']}, held-out accuracy "
          f"{'n/a' if acc is None else f'{acc:.3f}'}; checkpoint {summary['checkpoint']}")
    return finished(trainer)


def finished(trainer) -> int:
    """Exit code 0; a multi-process run leaves its process group together and exits at once."""
    from rltf.engine.distributed import exit_finished_process

    if trainer.dist.enabled:
        trainer.dist.close()
        exit_finished_process(0)
    return 0


def run_reward_model(args, overrides) -> int:
    from rltf.eval.reward_model import evaluate_reward_model
    from rltf.feedback.reward_model import SpanRewardModel
    from rltf.models.engines import build_backend, vllm_options
    from rltf.spans.annotate import read_annotations

    config = make_config(args.method, args.config, overrides)
    trainer = build_trainer(config, resume=args.resume)
    trainer.console(f"training a span reward model from {config.model} on {len(trainer.examples)} records of "
          f"{config.train_data} ({trainer.max_steps} steps); output in {config.output_dir}")
    summary = trainer.train()
    trainer.console(f"done: step {summary['step']}; checkpoint {summary['checkpoint']}")
    if config.eval_data and summary["checkpoint"] and trainer.dist.is_main:  # one process scores the held-out set
        records = read_annotations(config.eval_data)
        records = records[: config.eval_n] if config.eval_n else records
        trainer.model.eval()
        backend = build_backend(config.backend, trainer.model, trainer.tokenizer, options=vllm_options(config),
                                expected_tokens=len(records) * config.max_new_tokens, seed=config.seed)
        rm = SpanRewardModel(backend, config.max_new_tokens)
        result = evaluate_reward_model(rm, records)
        write_json(f"{config.output_dir}/eval_rm.json", result)
        print_rm_result(result)
    return finished(trainer)
