"""Spans: where a critique points in the answer, and the per-token rewards that follow (Text2Grad).

The names below are imported on first use (:mod:`rltf._lazy`): reading annotations needs no torch."""
from typing import TYPE_CHECKING

from rltf._lazy import lazy_exports
from rltf.errors import SpanError

__all__ = ["AlignmentReport", "SpanError", "SpanMatch", "locate", "token_offsets", "token_rewards"]
__getattr__, __dir__ = lazy_exports(__name__, {n: "rltf.spans.align" for n in __all__ if n != "SpanError"})

if TYPE_CHECKING:
    from rltf.spans.align import AlignmentReport, SpanMatch, locate, token_offsets, token_rewards
