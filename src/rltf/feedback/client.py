"""Chat clients for judges: any OpenAI-compatible endpoint over HTTP, or a local model.

The HTTP client has a timeout per request, retries with exponential backoff on 429, 5xx, timeouts
and connection errors, and runs up to ``concurrency`` requests at once.
"""
from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from rltf.models.backend import Messages, SamplingParams

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class JudgeError(Exception):
    """A request that failed for good (after retries), with the reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def parse_chat_response(raw: bytes) -> str:
    """The reply text in a chat-completions response body; JudgeError("bad_response" | "truncated") otherwise."""
    if len(raw) > MAX_RESPONSE_BYTES:
        raise JudgeError("bad_response", f"response over {MAX_RESPONSE_BYTES} bytes")
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        content, finish = choice["message"]["content"], choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        raise JudgeError("bad_response", raw[:200].decode("utf-8", "replace")) from None
    if not isinstance(content, str):
        raise JudgeError("bad_response", "message content is not a string")
    if finish == "length":
        raise JudgeError("truncated", "the reply was cut off by the token limit (finish_reason: length)")
    return content


class ChatClient(ABC):
    """Sends chat conversations to a model; one reply (or the JudgeError that ended it) per conversation."""

    name = "client"

    @abstractmethod
    def complete_many(self, conversations: Sequence[Messages]) -> list[str | JudgeError]:
        """Replies in the order of ``conversations``."""


class OpenAIChatClient(ChatClient):
    """POST {base_url}/chat/completions. The key comes from ``api_key_env`` (default OPENAI_API_KEY)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 1.0, concurrency: int = 8, temperature: float = 0.0,
                 max_tokens: int = 512):
        self.base_url, self.model = base_url.rstrip("/"), model
        self.api_key = os.environ.get(api_key_env, "")
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.concurrency, self.temperature, self.max_tokens = concurrency, temperature, max_tokens
        self.name = f"judge:{model}"

    def _request(self, messages: Messages) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            raw = resp.read(MAX_RESPONSE_BYTES + 1)
        return parse_chat_response(raw)

    def complete(self, messages: Messages) -> str:
        last = "unknown"
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(messages)
            except JudgeError as err:
                if err.reason == "truncated":
                    raise
                last = err.reason
            except urllib.error.HTTPError as err:
                last = f"http_{err.code}"
                if err.code != 429 and err.code < 500:
                    raise JudgeError(last, str(err.reason)) from None
            except (TimeoutError, socket.timeout):
                last = "timeout"
            except urllib.error.URLError as err:
                last = "timeout" if isinstance(err.reason, (TimeoutError, socket.timeout)) else "connection"
            except (ConnectionError, OSError):
                last = "connection"
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random() / 2))
        raise JudgeError(last, f"gave up after {self.max_retries + 1} attempts")

    def complete_many(self, conversations: Sequence[Messages]) -> list[str | JudgeError]:
        def one(messages):
            try:
                return self.complete(messages)
            except JudgeError as err:
                return err

        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(one, conversations))


class LocalChatClient(ChatClient):
    """A local model through a generation backend (batched), greedy by default."""

    def __init__(self, backend, name: str = "local", max_new_tokens: int = 256, temperature: float = 0.0):
        self.backend, self.name = backend, f"local:{name}"
        self.params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)

    def complete_many(self, conversations: Sequence[Messages]) -> list[str | JudgeError]:
        """Replies; one cut off at ``max_new_tokens`` is the failure ``truncated``, as over HTTP."""
        return [g.text if g.finish_reason != "length" else JudgeError("truncated", "cut off at max_new_tokens")
                for g in self.backend.generate(list(conversations), self.params, seed=0)]
