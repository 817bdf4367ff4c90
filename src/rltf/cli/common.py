"""Arguments and helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rltf.errors import ConfigError
from rltf.feedback import KINDS, SPAN_KINDS, JudgeConfig, build_feedback, build_span_feedback
from rltf.models.backend import AUTO_MIN_TOKENS, BACKENDS
from rltf.models.embedded import DEFAULT_MODEL
from rltf.engine.config_fields import check_value


def _checked(kind: type, meta: dict, name: str):
    """An argparse ``type`` reading ``kind`` and checking it against ``meta`` (ge/gt/le/lt, choices, plugin)
    with the same rule as config fields (:func:`rltf.engine.config_fields.check_value`): a bad value is
    argparse's exit 2."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        try:
            check_value("value", value, meta)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None
        return value

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def bounded(kind: type, **bounds):
    """A number flag within ``bounds`` (ge/gt/le/lt)."""
    convert = _checked(kind, bounds, kind.__name__)
    convert.bounds = bounds
    return convert


def duration(text: str) -> float:
    """A length of time with its unit, ``90s``, ``45m`` or ``1.5h``; -> seconds (argparse ``type``)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: a number and s, m or h, e.g. 90m or 1.5h") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be positive and finite")
    return seconds


def one_of(choices: tuple[str, ...], plugin: bool = False):
    """A flag that is one of ``choices`` (or, with ``plugin``, a ``file.py:Name``)."""
    return _checked(str, {"choices": choices, "plugin": plugin}, "choice")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"model: {DEFAULT_MODEL} (embedded default), tiny-random, a local directory or a hub id")
    p.add_argument("--dtype", default="auto", help="auto (float32 on CPU, bf16 on CUDA), float32, bfloat16, float16")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=bounded(int, ge=1), default=32, help="conversations generated together")
    p.add_argument("--backend", default="auto", type=one_of(BACKENDS),
                   help=f"generation backend: hf (transformers), vllm (pip install 'rltf[vllm]'), auto (vllm when "
                        f"installed and the job generates at least {AUTO_MIN_TOKENS} tokens)")
    p.add_argument("--vllm-kv-cache-gb", type=bounded(float, gt=0), default=1.0, help="vLLM on CPU: KV cache, GiB")
    p.add_argument("--vllm-gpu-memory-utilization", type=bounded(float, gt=0, le=1), default=0.9,
                   help="vLLM on CUDA: share of GPU memory for the engine")
    p.add_argument("--vllm-max-model-len", type=bounded(int, ge=16), default=4096,
                   help="vLLM: longest prompt + completion, tokens (capped by the model's limit)")


def add_feedback_args(p: argparse.ArgumentParser, default: str = "critic", spans: bool = False) -> None:
    own = "or path/to/file.py:Name (a FeedbackProvider of your own)"
    if spans:
        kinds, what = SPAN_KINDS, ("who writes the critique and its spans: critic (programmatic), judge (OpenAI-"
                                   "compatible endpoint), local (a local judge model), reward-model (a trained span "
                                   "reward model), human (people's stored spans, --human-feedback), ")
        p.add_argument("--reward-model", help="directory of a span reward model (--feedback reward-model)")
    else:
        kinds, what = KINDS, ("who writes critiques: critic (programmatic), correctness (correct/incorrect only), "
                              "judge (OpenAI-compatible endpoint), local (a local judge model), self (the policy), "
                              "human (people's stored critiques, --human-feedback), ")
    p.add_argument("--feedback", default=default, type=one_of(kinds, plugin=True), help=what + own)
    p.add_argument("--judge-url", help="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", help="model name sent to the judge endpoint")
    p.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--judge-timeout", type=bounded(float, gt=0), default=60.0, help="seconds per judge request")
    p.add_argument("--judge-concurrency", type=bounded(int, ge=1), default=8, help="judge requests in flight at once")
    p.add_argument("--judge-retries", type=bounded(int, ge=0), default=3, help="retries on 429/5xx/timeouts, with backoff")
    p.add_argument("--judge-cache", help="SQLite file caching judge replies")
    p.add_argument("--judge-local-model", help="model for --feedback local (default: the policy model)")
    p.add_argument("--human-feedback", help="annotation records (JSONL, from `rltf label-studio import`) for "
                                            "--feedback human")


def load_backend(args, expected_tokens: int | None = None, model: str | None = None):
    """The generation backend of ``--model`` (or ``model``) chosen by ``--backend``; ``expected_tokens``:
    what the command will generate at most (``auto`` weighs vLLM's start against it; None: unknown)."""
    if getattr(args, "feedback", None) == "judge":  # a missing endpoint is an error before the model loads
        JudgeConfig.from_options(args).check()
    from rltf.models import load_model_and_tokenizer
    from rltf.models.engines import build_backend, vllm_options

    model, tok = load_model_and_tokenizer(model or args.model, dtype=args.dtype, device=args.device)
    return build_backend(args.backend, model, tok, expected_tokens=expected_tokens, batch_size=args.batch_size,
                         options=vllm_options(args))


def _local_judge_backend(args):
    """The --judge-local-model backend for --feedback local, when it is not the policy itself."""
    if args.feedback == "local" and args.judge_local_model and args.judge_local_model != args.model:
        return load_backend(args, model=args.judge_local_model)
    return None


def build_feedback_from_args(args, backend):
    return build_feedback(args.feedback, backend, JudgeConfig.from_options(args, _local_judge_backend(args)))


def build_span_feedback_from_args(args, backend):
    return build_span_feedback(args.feedback, backend, JudgeConfig.from_options(args, _local_judge_backend(args)),
                               reward_model=args.reward_model, dtype=args.dtype, device=args.device)


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
