"""Models: the embedded default (SmolLM2-135M-Instruct from GGUF), tiny random models, any HF id or path.

The names below are imported on first use (:mod:`rltf._lazy`): ``rltf.models.backend`` and the
other light modules do not need torch or transformers."""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports

__all__ = ["DEFAULT_MODEL", "load_model", "load_tokenizer", "load_model_and_tokenizer", "resolve_dtype"]
__getattr__, __dir__ = lazy_exports(__name__, {"DEFAULT_MODEL": "rltf.models.embedded",
                                                **{n: "rltf.models.loading" for n in __all__[1:]}})

if TYPE_CHECKING:
    from rltf.models.embedded import DEFAULT_MODEL
    from rltf.models.loading import load_model, load_model_and_tokenizer, load_tokenizer, resolve_dtype
