"""Cross-entropy of the output layer, computed from its inputs in row chunks.

`softmax(W_s x)` over a large vocabulary is the biggest array of a train step: 50k words
× 128 sentences × 50 positions is 1.3 GB of float32 logits, and autodiff would keep them
and their gradient. The loss takes the output layer's inputs and W_s instead and runs
over chunks of rows whose logits stay under `max_logits` elements; the backward pass
recomputes each chunk's logits rather than storing them.
"""

import jax
import jax.numpy as jnp

from attn_research.model.decoder import logits as output_logits

MAX_LOGITS = 1 << 25  # elements of float32 logits alive at once (128 MB)


def _chunk_nll(
  features: jax.Array, matrix: jax.Array, targets: jax.Array, weights: jax.Array, eps: float
) -> jax.Array:
  """Weighted summed cross-entropy of `[rows, features]` × `[features, vocab]`."""
  logits = output_logits(features, matrix)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  nll = log_z - jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
  if eps:  # (1 − ε) on the reference, ε spread uniformly: ε · mean over the vocab of −log p
    nll = (1.0 - eps) * nll + eps * (log_z - jnp.mean(logits, axis=-1))
  return jnp.sum(nll * weights)


def token_nll(
  features: jax.Array,
  matrix: jax.Array,
  targets: jax.Array,
  mask: jax.Array,
  label_smoothing: float = 0.0,
  max_logits: int = MAX_LOGITS,
) -> tuple[jax.Array, jax.Array]:
  """Summed cross-entropy of `softmax(features @ matrix)` against the targets, and the
  token count.

  With `label_smoothing` ε the target distribution is (1 − ε) on the reference token and
  ε spread uniformly over the vocabulary (Szegedy et al. 2016).

  Args:
    features: `[..., features]` the output layer's inputs.
    matrix: `[features, vocab]` W_s.
    targets: `[...]` int ids.
    mask: `[...]` bool, the real tokens.
    label_smoothing: ε.
    max_logits: largest number of logits computed at once.
  """
  size, vocab = matrix.shape
  features = features.reshape(-1, size)
  targets = targets.reshape(-1)
  weights = mask.reshape(-1).astype(jnp.float32)
  tokens = jnp.sum(weights)
  rows = features.shape[0]
  chunk = max(1, max_logits // vocab)
  if rows <= chunk:
    return _chunk_nll(features, matrix, targets, weights, label_smoothing), tokens
  num_chunks = -(-rows // chunk)
  pad = num_chunks * chunk - rows  # padded rows have weight 0

  def split(x):
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(num_chunks, chunk, *x.shape[1:])

  one = jax.checkpoint(lambda f, y, w: _chunk_nll(f, matrix, y, w, label_smoothing))

  def body(total, chunk_inputs):
    return total + one(*chunk_inputs), None

  total, _ = jax.lax.scan(
    body, jnp.zeros((), jnp.float32), (split(features), split(targets), split(weights))
  )
  return total, tokens
