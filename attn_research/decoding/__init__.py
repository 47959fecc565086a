"""Decoding: greedy and beam search."""

from attn_research.decoding.beam import beam_search
from attn_research.decoding.greedy import greedy_decode

__all__ = ["beam_search", "greedy_decode"]
