"""The attention layer: a score function and an alignment, chosen by config strings."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.attention.alignments import ALIGNMENTS
from attn_research.attention.memory import Memory
from attn_research.attention.scores import SCORES


class Attention(nn.Module):
  """Context `c_t = Σ_s a_t(s) h̄_s` with `a_t` from the chosen score and alignment.

  Attributes:
    score: name in `SCORES` (`model.attention.score`).
    alignment: name in `ALIGNMENTS` (`model.attention.alignment`).
    query_size: size of the decoder state used as the query.
    window: D of local alignments (`model.attention.window`).
    size: inner size N of projected scores and of local-p's W_p (0: query size).
    max_length: positions the `location` score can address.
    initialization: "paper" or "default" parameter initialisation.
  """

  score: str
  alignment: str
  query_size: int
  window: int = 10
  size: int = 0
  max_length: int = 0
  initialization: str = "paper"

  def setup(self):
    self.score_fn = SCORES.get(self.score)(
      query_size=self.query_size,
      size=self.size,
      max_length=self.max_length,
      initialization=self.initialization,
      name="score",
    )
    self.align_fn = ALIGNMENTS.get(self.alignment)(
      window=self.window, size=self.size, initialization=self.initialization, name="alignment"
    )

  def prepare(self, values: jax.Array, mask: jax.Array) -> Memory:
    """Precomputes the per-source part of the score, once per source batch.

    Args:
      values: `[batch, src_len, hidden]` encoder states.
      mask: `[batch, src_len]` bool, True on real positions.
    """
    return Memory(values=values, keys=self.score_fn.prepare(values), mask=mask)

  def __call__(
    self, query: jax.Array, memory: Memory, positions: jax.Array | int = 0
  ) -> tuple[jax.Array, jax.Array]:
    """Attends from `[batch, ..., query_size]` queries.

    Args:
      query: one query per decoder step (`[batch, query_size]`) or several
        (`[batch, tgt_len, query_size]`).
      memory: from `prepare`.
      positions: 0-based target step of each query, broadcastable to `query.shape[:-1]`
        (read by local-m).

    Returns:
      context `[batch, ..., hidden]` and weights `[batch, ..., src_len]` (exactly 0 on
      padding and outside a local window; a fully padded source gives zero weights and a
      zero context).
    """
    batch, *middle, size = query.shape
    flat = query.reshape(batch, -1, size)
    pos = jnp.broadcast_to(jnp.asarray(positions, jnp.int32), query.shape[:-1]).reshape(batch, -1)
    context, weights = self.align_fn(self.score_fn, flat, memory, pos)
    src_len = memory.mask.shape[1]
    return context.reshape(batch, *middle, -1), weights.reshape(batch, *middle, src_len)
