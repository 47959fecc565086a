"""The attention layer: a score function and an alignment, chosen by config strings."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.attention.alignments import ALIGNMENTS
from attn_research.attention.memory import Memory
from attn_research.attention.scores import SCORES


class Attention(nn.Module):
  """Context vector `c_t = Σ_s a_t(s) h̄_s` with `a_t` from the chosen score and alignment.

  Attributes:
    score: name in `SCORES` (`model.attention.score`).
    alignment: name in `ALIGNMENTS` (`model.attention.alignment`).
    query_size: size of the decoder state used as the query.
  """

  score: str
  alignment: str
  query_size: int

  def setup(self):
    self.score_fn = SCORES.get(self.score)(query_size=self.query_size, name="score")
    self.align_fn = ALIGNMENTS.get(self.alignment)(name="alignment")

  def prepare(self, values: jax.Array, mask: jax.Array) -> Memory:
    """Precomputes the per-source part of the score.

    Args:
      values: `[batch, src_len, hidden]` encoder states.
      mask: `[batch, src_len]` bool, True on real positions.
    """
    return Memory(values=values, keys=self.score_fn.prepare(values), mask=mask)

  def __call__(self, query: jax.Array, memory: Memory) -> tuple[jax.Array, jax.Array]:
    """Attends from `[batch, ..., query_size]` queries.

    Returns:
      context `[batch, ..., hidden]` and weights `[batch, ..., src_len]` (exactly 0 on
      padding; a fully padded source gives zero weights and a zero context).
    """
    weights = self.align_fn(self.score_fn, query, memory)
    batch, *middle, src_len = weights.shape
    context = jnp.einsum(
      "bqs,bsd->bqd", weights.reshape(batch, -1, src_len), memory.values
    ).reshape(batch, *middle, memory.values.shape[-1])
    return context, weights
