"""Greedy decoding: the most probable token at each step, fed back as the next input."""

import jax
import jax.numpy as jnp

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.model import Seq2Seq


def greedy_decode(
  model: Seq2Seq, params, src: jax.Array, src_mask: jax.Array, max_len: int
) -> tuple[jax.Array, jax.Array]:
  """Decodes `[batch, src_len]` sources for at most `max_len` steps.

  A `lax.while_loop` stops as soon as every row has emitted `</s>`, so a batch of short
  sentences does not pay for the longest bucket.

  Returns:
    tokens `[batch, max_len]` (`</s>` then `<pad>` once a row has finished) and attention
    weights `[batch, max_len, src_len]` (zero after `</s>`).
  """
  variables = {"params": params}
  memory, state = model.apply(variables, src, src_mask, hard=True, method=Seq2Seq.encode)
  batch, src_len = src.shape

  def running(carry):
    step, _, _, done, _, _ = carry
    return (step < max_len) & ~jnp.all(done)

  def body(carry):
    step, state, prev, done, tokens, weights = carry
    state, logits, attn = model.apply(variables, memory, state, prev, method=Seq2Seq.decode_step)
    token = jnp.where(done, PAD_ID, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    attn = jnp.where(done[:, None], 0.0, attn)
    tokens = jax.lax.dynamic_update_index_in_dim(tokens, token, step, axis=1)
    weights = jax.lax.dynamic_update_index_in_dim(weights, attn.astype(weights.dtype), step, 1)
    return step + 1, state, token, done | (token == EOS_ID), tokens, weights

  init = (
    jnp.zeros((), jnp.int32),
    state,
    jnp.full((batch,), BOS_ID, jnp.int32),
    jnp.zeros((batch,), bool),
    jnp.full((batch, max_len), PAD_ID, jnp.int32),
    jnp.zeros((batch, max_len, src_len), jnp.float32),
  )
  _, _, _, _, tokens, weights = jax.lax.while_loop(running, body, init)
  return tokens, weights
