"""The OpenAI API as rltf serve speaks it: request validation and response bodies.

Requests are checked field by field the way vLLM's OpenAI-compatible server checks them: a field
the server does not implement is refused with a 400 that names it (never silently ignored),
except ``user`` (an end-user id for abuse tracking, accepted and unused, as in vLLM) and sampling
knobs sent at their no-op value (``frequency_penalty: 0``, ``logit_bias: {}``, ...).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from rltf.errors import ConfigError
from rltf.models.backend import Generation, SamplingParams
from rltf.engine.config_fields import check_value

MAX_N = 16
MAX_TOP_LOGPROBS = 20  # OpenAI's limit for chat; completions allow 5
MAX_STOP = 4


class ServeError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             405: "invalid_request_error", 411: "invalid_request_error", 413: "invalid_request_error",
             414: "invalid_request_error", 431: "invalid_request_error", 429: "rate_limit_error",
             500: "internal_server_error", 501: "invalid_request_error", 503: "service_unavailable",
             505: "invalid_request_error"}

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.status}}


@dataclass
class GenerationRequest:
    """A validated request: token-id prompts (each to be answered ``n`` times) and how to sample."""

    kind: str  # "chat" or "completion"
    model: str
    prompts: list[list[int]]
    n: int
    params: SamplingParams
    seed: int | None
    logprobs: bool
    stream: bool
    include_usage: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_NO_OP = {"frequency_penalty": (0, 0.0), "presence_penalty": (0, 0.0), "logit_bias": ({},),
          "response_format": ({"type": "text"},), "parallel_tool_calls": (False,), "echo": (False,),
          "suffix": ("",), "service_tier": ("auto", "default"), "store": (False,)}
_CHAT_FIELDS = {"model", "messages", "n", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
                "seed", "logprobs", "top_logprobs", "stream", "stream_options", "user", *_NO_OP}
_COMPLETION_FIELDS = {"model", "prompt", "n", "best_of", "temperature", "top_p", "max_tokens", "stop", "seed",
                      "logprobs", "stream", "stream_options", "user", *_NO_OP}


def _number(req: dict, name: str, default, kind=float, lo=None, hi=None, lo_open=False):
    value = req.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ServeError(400, f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}", name)
    bounds = {"gt" if lo_open else "ge": lo, "le": hi}
    try:
        check_value(name, value, {k: v for k, v in bounds.items() if v is not None})
    except ConfigError as err:
        raise ServeError(400, str(err), name) from None
    return kind(value)


def _flag(req: dict, name: str) -> bool:
    value = req.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ServeError(400, f"{name} must be true or false, got {value!r}", name)
    return value


def _check_fields(req: Any, allowed: set[str]) -> None:
    if not isinstance(req, dict):
        raise ServeError(400, "the request body must be a JSON object")
    for name, value in req.items():
        if name not in allowed:
            raise ServeError(400, f"unsupported parameter: {name!r} (rltf serve does not implement it)", name)
        if name in _NO_OP and value is not None and value not in _NO_OP[name]:
            raise ServeError(400, f"unsupported value for {name!r}: {value!r} (only {_NO_OP[name][0]!r} is "
                                  "implemented)", name)
    if "user" in req and req["user"] is not None and not isinstance(req["user"], str):
        raise ServeError(400, "user must be a string", "user")


def _sampling(req: dict, max_tokens_cap: int, top_logprobs: int) -> tuple[SamplingParams, int, int | None]:
    if req.get("max_tokens") is not None and req.get("max_completion_tokens") is not None \
            and req["max_tokens"] != req["max_completion_tokens"]:
        raise ServeError(400, "max_tokens and max_completion_tokens disagree; send one of them", "max_tokens")
    key = "max_completion_tokens" if req.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(req, key, 256, int, lo=1, hi=max_tokens_cap)
    stop = req.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > MAX_STOP or not all(isinstance(s, str) and s for s in stop):
        raise ServeError(400, f"stop must be a non-empty string or a list of at most {MAX_STOP} of them", "stop")
    seed = req.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ServeError(400, f"seed must be an integer, got {seed!r}", "seed")
    params = SamplingParams(max_new_tokens=max_tokens, temperature=_number(req, "temperature", 1.0, lo=0, hi=2),
                            top_p=_number(req, "top_p", 1.0, lo=0, hi=1, lo_open=True), stop=tuple(stop),
                            top_logprobs=top_logprobs)
    return params, _number(req, "n", 1, int, lo=1, hi=MAX_N), seed


def _stream_options(req: dict, stream: bool) -> bool:
    options = req.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise ServeError(400, "stream_options is only allowed with stream: true", "stream_options")
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise ServeError(400, "stream_options supports only include_usage", "stream_options")
    return _flag(options, "include_usage")


def _message_text(message: Any, k: int) -> dict[str, str]:
    if not isinstance(message, dict):
        raise ServeError(400, f"messages[{k}] must be an object with role and content", "messages")
    role, content = message.get("role"), message.get("content")
    if role not in ("system", "developer", "user", "assistant"):
        raise ServeError(400, f"messages[{k}].role must be system, developer, user or assistant, got {role!r}",
                         "messages")
    if isinstance(content, list):  # content parts: only text is served
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ServeError(400, f"messages[{k}].content: only text parts are supported", "messages")
            parts.append(part["text"])
        content = "".join(parts)
    if not isinstance(content, str):
        raise ServeError(400, f"messages[{k}].content must be a string or a list of text parts", "messages")
    return {"role": "system" if role == "developer" else role, "content": content}


def parse_chat(req: Any, tokenizer_prompt, max_tokens_cap: int) -> GenerationRequest:
    """A chat-completions body -> GenerationRequest. ``tokenizer_prompt(messages)`` renders the chat."""
    _check_fields(req, _CHAT_FIELDS)
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ServeError(400, "messages must be a non-empty list", "messages")
    conversation = [_message_text(m, k) for k, m in enumerate(messages)]
    logprobs = _flag(req, "logprobs")
    top = _number(req, "top_logprobs", 0, int, lo=0, hi=MAX_TOP_LOGPROBS)
    if top and not logprobs:
        raise ServeError(400, "top_logprobs needs logprobs: true", "top_logprobs")
    params, n, seed = _sampling(req, max_tokens_cap, top)
    stream = _flag(req, "stream")
    return GenerationRequest("chat", _model(req), [tokenizer_prompt(conversation)], n, params, seed, logprobs, stream,
                             _stream_options(req, stream))


def parse_completion(req: Any, encode, max_tokens_cap: int) -> GenerationRequest:
    """A completions body (``prompt``: a string or a list of strings) -> GenerationRequest."""
    _check_fields(req, _COMPLETION_FIELDS)
    prompt = req.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ServeError(400, "prompt must be a string or a non-empty list of strings (token-id prompts are not "
                              "supported)", "prompt")
    top = _number(req, "logprobs", None, int, lo=0, hi=5)
    params, n, seed = _sampling(req, max_tokens_cap, top or 0)
    if req.get("best_of") is not None and req["best_of"] != n:
        raise ServeError(400, "best_of is only supported equal to n", "best_of")
    stream = _flag(req, "stream")
    return GenerationRequest("completion", _model(req), [encode(p) for p in prompts], n, params, seed,
                             top is not None, stream, _stream_options(req, stream))


def _model(req: dict) -> str:
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise ServeError(400, "model is required", "model")
    return model


# -- responses ---------------------------------------------------------------------------------

def new_id(kind: str) -> str:
    return f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"


def usage(request: GenerationRequest, gens: list[Generation]) -> dict[str, int]:
    prompt = sum(len(p) for p in request.prompts)
    completion = sum(g.num_tokens for g in gens)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def token_text(tokenizer, token_id: int) -> str:
    return tokenizer.decode([token_id])


def chat_logprobs(tokenizer, gen: Generation) -> dict[str, Any]:
    """``choice.logprobs`` of a chat completion: one entry per generated token."""
    content = []
    for t, (tid, lp) in enumerate(zip(gen.token_ids, gen.logprobs)):
        text = token_text(tokenizer, tid)
        alternatives = gen.top_logprobs[t] if t < len(gen.top_logprobs) else []
        content.append({"token": text, "logprob": lp, "bytes": list(text.encode("utf-8", "replace")),
                        "top_logprobs": [{"token": (a := token_text(tokenizer, i)), "logprob": v,
                                          "bytes": list(a.encode("utf-8", "replace"))} for i, v in alternatives]})
    return {"content": content}


def completion_logprobs(tokenizer, gen: Generation) -> dict[str, Any]:
    """``choice.logprobs`` of a (legacy) completion: tokens, token_logprobs, top_logprobs, text_offset."""
    tokens = [token_text(tokenizer, t) for t in gen.token_ids]
    offsets, pos = [], 0
    for text in tokens:
        offsets.append(pos)
        pos += len(text)
    tops = [{token_text(tokenizer, i): v for i, v in alt} for alt in gen.top_logprobs] or None
    return {"tokens": tokens, "token_logprobs": list(gen.logprobs), "top_logprobs": tops, "text_offset": offsets}


def response_body(request: GenerationRequest, gens: list[Generation], tokenizer, model_name: str) -> dict[str, Any]:
    choices = []
    for index, gen in enumerate(gens):
        if request.kind == "chat":
            lp = chat_logprobs(tokenizer, gen) if request.logprobs else None
            choices.append({"index": index, "message": {"role": "assistant", "content": gen.text},
                            "logprobs": lp, "finish_reason": gen.finish_reason})
        else:
            lp = completion_logprobs(tokenizer, gen) if request.logprobs else None
            choices.append({"index": index, "text": gen.text, "logprobs": lp, "finish_reason": gen.finish_reason})
    return {"id": new_id(request.kind), "object": "chat.completion" if request.kind == "chat" else "text_completion",
            "created": int(time.time()), "model": model_name, "choices": choices, "usage": usage(request, gens)}


def text_pieces(tokenizer, gen: Generation) -> list[str]:
    """The generated text cut at token boundaries for streaming; the pieces join to exactly ``gen.text``.

    A piece is held back while it ends inside a multi-byte character (the decoder shows U+FFFD),
    as vLLM's detokenizer does."""
    pieces, emitted = [], ""
    for k in range(1, len(gen.token_ids) + 1):
        text = tokenizer.decode(gen.token_ids[:k], skip_special_tokens=True)
        if text.endswith("\ufffd") or not gen.text.startswith(text):
            continue
        if len(text) > len(emitted):
            pieces.append(text[len(emitted):])
            emitted = text
    if len(gen.text) > len(emitted):
        pieces.append(gen.text[len(emitted):])
    return pieces


def stream_chunks(request: GenerationRequest, gens: list[Generation], tokenizer, model_name: str) -> list[dict]:
    """The server-sent events of a streamed response, in OpenAI's chunk format (without ``[DONE]``)."""
    rid, created = new_id(request.kind), int(time.time())
    kind = "chat.completion.chunk" if request.kind == "chat" else "text_completion"

    def chunk(choices, **extra):
        return {"id": rid, "object": kind, "created": created, "model": model_name, "choices": choices, **extra}

    out = []
    for index, gen in enumerate(gens):
        if request.kind == "chat":
            out.append(chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                               "finish_reason": None}]))
        for piece in text_pieces(tokenizer, gen):
            if request.kind == "chat":
                out.append(chunk([{"index": index, "delta": {"content": piece}, "logprobs": None,
                                   "finish_reason": None}]))
            else:
                out.append(chunk([{"index": index, "text": piece, "logprobs": None, "finish_reason": None}]))
        last = ({"index": index, "delta": {}, "logprobs": chat_logprobs(tokenizer, gen) if request.logprobs else None,
                 "finish_reason": gen.finish_reason} if request.kind == "chat" else
                {"index": index, "text": "", "logprobs": completion_logprobs(tokenizer, gen) if request.logprobs
                 else None, "finish_reason": gen.finish_reason})
        out.append(chunk([last]))
    if request.include_usage:
        out.append(chunk([], usage=usage(request, gens)))
    return out
