"""Alignment types: which source positions a decoder step may attend to, and how.

An alignment turns the energies of a score function into weights over the full source
length (so heatmaps and alignment error work the same for every variant).
"""

import flax.linen as nn
import jax

from attn_research.attention.masking import masked_softmax
from attn_research.attention.memory import Memory
from attn_research.registry import Registry

ALIGNMENTS: Registry[type[nn.Module]] = Registry("alignment", "model.attention.alignment")


@ALIGNMENTS.register("global")
class GlobalAlignment(nn.Module):
  """Luong's global attention (Eq. 7): a softmax over every real source position."""

  def __call__(self, score: nn.Module, query: jax.Array, memory: Memory) -> jax.Array:
    """Returns `[batch, ..., src_len]` weights for `[batch, ..., dim]` queries."""
    return masked_softmax(score(query, memory.keys), memory.mask)
