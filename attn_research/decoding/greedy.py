"""Greedy decoding: the most probable token at each step, fed back as the next input."""

import jax
import jax.numpy as jnp

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.model import Seq2Seq


def greedy_decode(
  model: Seq2Seq, params, src: jax.Array, src_mask: jax.Array, max_len: int
) -> tuple[jax.Array, jax.Array]:
  """Decodes `[batch, src_len]` sources for `max_len` steps.

  Returns:
    tokens `[batch, max_len]` (`</s>` then `<pad>` once a row has finished) and attention
    weights `[batch, max_len, src_len]` (zero after `</s>`).
  """
  variables = {"params": params}
  memory, state = model.apply(variables, src, src_mask, method=Seq2Seq.encode)

  def body(carry, _):
    state, prev, done = carry
    state, logits, weights = model.apply(variables, memory, state, prev, method=Seq2Seq.decode_step)
    token = jnp.where(done, PAD_ID, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    weights = jnp.where(done[:, None], 0.0, weights)
    return (state, token, done | (token == EOS_ID)), (token, weights)

  start = jnp.full(src.shape[:1], BOS_ID, jnp.int32)
  init = (state, start, jnp.zeros(src.shape[:1], bool))
  _, (tokens, weights) = jax.lax.scan(body, init, None, length=max_len)
  return jnp.swapaxes(tokens, 0, 1), jnp.swapaxes(weights, 0, 1)
