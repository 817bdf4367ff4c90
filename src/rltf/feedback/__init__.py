"""Feedback providers: programmatic critics, correctness-only, LLM judges (remote or local), self-critique."""
from __future__ import annotations

from rltf.errors import ConfigError
from rltf.feedback.base import Critique, FeedbackProvider, Span, leaks_answer
from rltf.feedback.correctness import CorrectnessFeedback
from rltf.feedback.critics import ProgrammaticCritic
from rltf.feedback.judge import LLMJudge, SelfCritic
from rltf.feedback.reward_model import SpanRewardModel
from rltf.plugins import is_plugin_spec, load_subclass

KINDS = ("critic", "correctness", "judge", "local", "self")
PLUGIN_HELP = "or path/to/file.py:ClassName, a FeedbackProvider subclass of your own"


def load_provider(spec: str, backend=None) -> FeedbackProvider:
    """A user's FeedbackProvider from ``file.py:Name``; built with ``backend=`` when it takes one."""
    import inspect

    cls = load_subclass(spec, FeedbackProvider, "a feedback provider")
    takes_backend = "backend" in inspect.signature(cls).parameters
    return cls(backend=backend) if takes_backend else cls()


def _http_judge_client(url, model, key_env, timeout, concurrency, retries):
    if not url or not model:
        raise ConfigError("--feedback judge needs --judge-url and --judge-model (an OpenAI-compatible endpoint)")
    from rltf.feedback.client import OpenAIChatClient

    return OpenAIChatClient(url, model, api_key_env=key_env, timeout=timeout, concurrency=concurrency,
                            max_retries=retries)


def build_feedback(kind: str, backend=None, judge_url: str | None = None, judge_model: str | None = None,
                   judge_key_env: str = "OPENAI_API_KEY", judge_timeout: float = 60.0, judge_concurrency: int = 8,
                   judge_retries: int = 3, cache: str | None = None, local_backend=None) -> FeedbackProvider:
    """Make a provider by name. ``judge`` needs ``judge_url`` and ``judge_model``; ``local`` uses
    ``local_backend`` (a judge model, by default the policy's backend); ``self`` uses the policy;
    ``file.py:Name`` is a provider of your own (:func:`load_provider`)."""
    if is_plugin_spec(kind):
        return load_provider(kind, backend)
    if kind == "critic":
        return ProgrammaticCritic()
    if kind == "correctness":
        return CorrectnessFeedback()
    if kind == "judge":
        client = _http_judge_client(judge_url, judge_model, judge_key_env, judge_timeout, judge_concurrency,
                                    judge_retries)
        return LLMJudge(client, cache=cache)
    if kind == "local":
        from rltf.feedback.client import LocalChatClient

        return LLMJudge(LocalChatClient(local_backend or backend, "local"), cache=None)
    if kind == "self":
        if backend is None:
            raise ConfigError("self-critique needs the policy's generation backend")
        return SelfCritic(backend)
    raise ConfigError(f"unknown feedback {kind!r}; choose one of {', '.join(KINDS)}, {PLUGIN_HELP}")


SPAN_KINDS = ("critic", "judge", "local", "reward-model")


def build_span_feedback(kind: str, backend=None, judge_url: str | None = None, judge_model: str | None = None,
                        judge_key_env: str = "OPENAI_API_KEY", judge_timeout: float = 60.0, judge_concurrency: int = 8,
                        judge_retries: int = 3, cache: str | None = None, local_backend=None,
                        reward_model: str | None = None, dtype: str = "auto", device: str = "auto") -> FeedbackProvider:
    """A provider of dual feedback (critique + labelled spans): the programmatic critic, an LLM
    judge with the span prompts (remote or local), or a trained span reward model (a directory)."""
    from rltf.feedback.span_judge import SpanJudge

    if is_plugin_spec(kind):
        return load_provider(kind, backend)
    if kind == "critic":
        return ProgrammaticCritic()
    if kind == "judge":
        client = _http_judge_client(judge_url, judge_model, judge_key_env, judge_timeout, judge_concurrency,
                                    judge_retries)
        return SpanJudge(client, cache=cache)
    if kind == "local":
        from rltf.feedback.client import LocalChatClient

        return SpanJudge(LocalChatClient(local_backend or backend, "local", max_new_tokens=256))
    if kind == "reward-model":
        if not reward_model:
            raise ConfigError("span feedback from a reward model needs its directory (reward_model=DIR)")
        return SpanRewardModel.from_pretrained(reward_model, dtype=dtype, device=device)
    raise ConfigError(f"unknown span feedback {kind!r}; choose one of {', '.join(SPAN_KINDS)}, {PLUGIN_HELP}")


__all__ = ["Critique", "Span", "FeedbackProvider", "ProgrammaticCritic", "CorrectnessFeedback", "LLMJudge",
           "SelfCritic", "build_feedback", "build_span_feedback", "SPAN_KINDS", "leaks_answer", "KINDS", "load_provider"]
