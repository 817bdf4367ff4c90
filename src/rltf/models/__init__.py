"""Models: the embedded default (SmolLM2-135M-Instruct from GGUF), tiny random models, any HF id or path."""
from rltf.models.loading import DEFAULT_MODEL, load_model, load_tokenizer, load_model_and_tokenizer, resolve_dtype

__all__ = ["DEFAULT_MODEL", "load_model", "load_tokenizer", "load_model_and_tokenizer", "resolve_dtype"]
