"""Decoding: greedy search (beam search arrives with the decoder zoo)."""

from attn_research.decoding.greedy import greedy_decode

__all__ = ["greedy_decode"]
