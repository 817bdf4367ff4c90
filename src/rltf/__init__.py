"""rltf: train language models from natural-language feedback."""
__version__ = "0.1.0"
