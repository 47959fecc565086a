"""Padding masks for attention: −∞ before the softmax, exact zeros after it."""

import jax
import jax.numpy as jnp


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """Softmax over the last axis that gives padded positions exactly zero weight.

  Masked scores are replaced by the most negative finite float (not −∞, whose
  `−∞ − (−∞)` would make a fully masked row NaN); masked positions of the result are then
  set to 0, so padding is exactly 0 even when a whole row is masked, in which case the
  row is all zeros (an empty source yields a zero context vector).

  Args:
    scores: `[batch, ..., src_len]` attention energies.
    mask: bool, broadcastable to `scores`; True on real positions.

  Returns:
    `[batch, ..., src_len]` weights, summing to 1 over real positions (0 for empty rows).
  """
  # The softmax runs in float32 or the input's wider dtype (bfloat16 sums drift).
  dtype = jnp.promote_types(scores.dtype, jnp.float32)
  neg = jnp.finfo(dtype).min
  weights = jax.nn.softmax(jnp.where(mask, scores.astype(dtype), neg), axis=-1)
  return jnp.where(mask, weights, 0.0).astype(scores.dtype)
