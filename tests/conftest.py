"""Test tiers: ``make test`` (and ``.ci/run``) runs everything; ``make test-fast`` (``RLTF_FAST=1``)
skips the tests marked ``slow`` (multi-process runs, the embedded default model) and ``soak`` (20
kills of a training run), for the inner loop. Every test has a time limit (pytest-timeout, pyproject)."""
import os
import socket

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("RLTF_FAST") != "1":
        return
    skip = pytest.mark.skip(reason="RLTF_FAST=1: the fast tier leaves out slow and soak tests (make test runs them)")
    for item in items:
        if "slow" in item.keywords or "soak" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny random Llama."""
    from rltf.models import load_model_and_tokenizer

    return load_model_and_tokenizer("tiny-random")


@pytest.fixture(scope="session")
def tiny_backend(tiny):
    from rltf.models.hf_backend import HFBackend

    return HFBackend(*tiny, batch_size=4)


@pytest.fixture(scope="session")
def smol():
    """The embedded default model (converted once into the cache)."""
    from rltf.models import load_model_and_tokenizer

    return load_model_and_tokenizer("smollm2-135m")
