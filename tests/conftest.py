import os
import socket

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
