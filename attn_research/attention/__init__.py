"""Attention: score functions × alignment types × normalisers, selected by config strings."""

from attn_research.attention.alignments import ALIGNMENTS
from attn_research.attention.attention import Attention, AttentionConfig, AttentionState
from attn_research.attention.masking import masked_softmax
from attn_research.attention.memory import Memory
from attn_research.attention.normalizers import NORMALIZERS
from attn_research.attention.scores import SCORES

__all__ = [
  "ALIGNMENTS",
  "NORMALIZERS",
  "SCORES",
  "Attention",
  "AttentionConfig",
  "AttentionState",
  "Memory",
  "masked_softmax",
]
