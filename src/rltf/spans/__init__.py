"""Spans: where a critique points in the answer, and the per-token rewards that follow (Text2Grad)."""
from rltf.errors import SpanError
from rltf.spans.align import AlignmentReport, SpanMatch, locate, token_offsets, token_rewards

__all__ = ["AlignmentReport", "SpanError", "SpanMatch", "locate", "token_offsets", "token_rewards"]
