"""Feedback providers: programmatic critics, correctness-only, LLM judges (remote or local), self-critique.

Providers are built by name from two registries, :data:`PROVIDERS` (critiques, for RLTF) and
:data:`SPAN_PROVIDERS` (critiques with labelled spans, for Text2Grad); a ``path/to/file.py:Name``
is a provider of the user's own. Everything about reaching an LLM judge travels in one
:class:`JudgeConfig`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from rltf._lazy import lazy_exports
from rltf.errors import ConfigError
from rltf.feedback.base import Critique, FeedbackProvider, Span, leaks_answer
from rltf.plugins import is_plugin_spec, load_subclass

# the providers are imported on first use (rltf._lazy): choosing one by name needs neither torch nor
# transformers, which the local-model ones (local judge, span reward model) bring in
_PROVIDER_MODULES = {
    "ProgrammaticCritic": "rltf.feedback.critics", "CorrectnessFeedback": "rltf.feedback.correctness",
    "HumanFeedback": "rltf.feedback.human", "LLMJudge": "rltf.feedback.judge", "SelfCritic": "rltf.feedback.judge",
    "SpanRewardModel": "rltf.feedback.reward_model", "SpanJudge": "rltf.feedback.span_judge",
    "LocalChatClient": "rltf.feedback.client", "OpenAIChatClient": "rltf.feedback.client",
}
__getattr__, __dir__ = lazy_exports(__name__, _PROVIDER_MODULES)
_provider = __getattr__  # inside functions: bare global names do not go through __getattr__

if TYPE_CHECKING:
    from rltf.feedback.client import LocalChatClient, OpenAIChatClient
    from rltf.feedback.correctness import CorrectnessFeedback
    from rltf.feedback.critics import ProgrammaticCritic
    from rltf.feedback.human import HumanFeedback
    from rltf.feedback.judge import LLMJudge, SelfCritic
    from rltf.feedback.reward_model import SpanRewardModel
    from rltf.feedback.span_judge import SpanJudge

PLUGIN_HELP = "or path/to/file.py:ClassName, a FeedbackProvider subclass of your own"


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to reach an OpenAI-compatible judge, and the local judge model if any."""

    url: str | None = None
    model: str | None = None
    key_env: str = "OPENAI_API_KEY"  # environment variable holding the API key
    timeout: float = 60.0  # seconds per request
    concurrency: int = 8  # requests in flight at once
    retries: int = 3  # on 429, 5xx, timeouts and connection errors, with backoff
    cache: str | None = None  # SQLite file caching accepted replies
    local_backend: Any = None  # generation backend of --judge-local-model (default: the policy's)
    human_feedback: str | None = None  # annotation records (JSONL) that the ``human`` provider serves

    @classmethod
    def from_options(cls, options: Any, local_backend: Any = None) -> "JudgeConfig":
        """From anything with the ``judge_*`` fields: a training config, or the CLI's parsed arguments."""
        return cls(options.judge_url, options.judge_model, options.judge_key_env, options.judge_timeout,
                   options.judge_concurrency, options.judge_retries, options.judge_cache, local_backend,
                   getattr(options, "human_feedback", None))

    def check(self) -> None:
        """Raise ConfigError unless an endpoint and a model are named (before any model is loaded)."""
        if not self.url or not self.model:
            raise ConfigError("--feedback judge needs --judge-url and --judge-model (an OpenAI-compatible endpoint)")

    def client(self) -> OpenAIChatClient:
        self.check()
        return _provider("OpenAIChatClient")(self.url, self.model, api_key_env=self.key_env, timeout=self.timeout,
                                             concurrency=self.concurrency, max_retries=self.retries)


def _self_critic(judge: JudgeConfig, backend: Any, **_: Any) -> FeedbackProvider:
    if backend is None:
        raise ConfigError("self-critique needs the policy's generation backend")
    return _provider("SelfCritic")(backend)


def _span_reward_model(judge: JudgeConfig, backend: Any, reward_model: str | None = None, dtype: str = "auto",
                       device: str = "auto", **_: Any) -> FeedbackProvider:
    if not reward_model:
        raise ConfigError("span feedback from a reward model needs its directory (reward_model=DIR)")
    return _provider("SpanRewardModel").from_pretrained(reward_model, dtype=dtype, device=device)


Builder = Callable[..., FeedbackProvider]  # (judge: JudgeConfig, backend, **options) -> provider
PROVIDERS: dict[str, Builder] = {
    "critic": lambda judge, backend, **_: _provider("ProgrammaticCritic")(),
    "correctness": lambda judge, backend, **_: _provider("CorrectnessFeedback")(),
    "judge": lambda judge, backend, **_: _provider("LLMJudge")(judge.client(), cache=judge.cache),
    "local": lambda judge, backend, **_: _provider("LLMJudge")(
        _provider("LocalChatClient")(judge.local_backend or backend, "local")),
    "self": _self_critic,
    "human": lambda judge, backend, **_: _provider("HumanFeedback").from_file(judge.human_feedback),
}
SPAN_PROVIDERS: dict[str, Builder] = {
    "critic": lambda judge, backend, **_: _provider("ProgrammaticCritic")(),
    "judge": lambda judge, backend, **_: _provider("SpanJudge")(judge.client(), cache=judge.cache),
    "local": lambda judge, backend, **_: _provider("SpanJudge")(
        _provider("LocalChatClient")(judge.local_backend or backend, "local", max_new_tokens=256)),
    "reward-model": _span_reward_model,
    "human": lambda judge, backend, **_: _provider("HumanFeedback").from_file(judge.human_feedback),
}
KINDS = tuple(PROVIDERS)
SPAN_KINDS = tuple(SPAN_PROVIDERS)


def load_provider(spec: str, backend=None) -> FeedbackProvider:
    """A user's FeedbackProvider from ``file.py:Name``; built with ``backend=`` when it takes one."""
    cls = load_subclass(spec, FeedbackProvider, "a feedback provider")
    takes_backend = "backend" in inspect.signature(cls).parameters
    return cls(backend=backend) if takes_backend else cls()


def _build(registry: dict[str, Builder], what: str, kind: str, backend, judge: JudgeConfig | None,
           **options: Any) -> FeedbackProvider:
    if is_plugin_spec(kind):
        return load_provider(kind, backend)
    if kind not in registry:
        raise ConfigError(f"unknown {what} {kind!r}; choose one of {', '.join(registry)}, {PLUGIN_HELP}")
    return registry[kind](judge or JudgeConfig(), backend, **options)


def build_feedback(kind: str, backend=None, judge: JudgeConfig | None = None) -> FeedbackProvider:
    """A critique provider by name (:data:`PROVIDERS`): ``judge`` needs ``judge.url`` and ``judge.model``;
    ``local`` uses ``judge.local_backend`` (default: ``backend``); ``self`` is the policy (``backend``)."""
    return _build(PROVIDERS, "feedback", kind, backend, judge)


def build_span_feedback(kind: str, backend=None, judge: JudgeConfig | None = None, reward_model: str | None = None,
                        dtype: str = "auto", device: str = "auto") -> FeedbackProvider:
    """A provider of dual feedback (critique + labelled spans) by name (:data:`SPAN_PROVIDERS`): the
    programmatic critic, an LLM judge with the span prompts (remote or local), or a trained span
    reward model (``reward_model``, a directory)."""
    return _build(SPAN_PROVIDERS, "span feedback", kind, backend, judge, reward_model=reward_model, dtype=dtype,
                  device=device)


__all__ = ["Critique", "Span", "FeedbackProvider", "ProgrammaticCritic", "CorrectnessFeedback", "LLMJudge",
           "SelfCritic", "HumanFeedback", "JudgeConfig", "PROVIDERS", "SPAN_PROVIDERS", "build_feedback", "build_span_feedback",
           "SPAN_KINDS", "leaks_answer", "KINDS", "load_provider"]
