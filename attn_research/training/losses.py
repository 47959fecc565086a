"""What a train step minimises: the output layer's cross-entropy, computed from its
inputs in row chunks, plus optional terms on the attention weights.

`softmax(W_s x)` over a large vocabulary is the biggest array of a train step: 50k words
× 128 sentences × 50 positions is 1.3 GB of float32 logits, and autodiff would keep them
and their gradient. The loss takes the output layer's inputs and W_s instead and runs
over chunks of rows whose logits stay under `max_logits` elements; the backward pass
recomputes each chunk's logits rather than storing them.
"""

import dataclasses

import jax
import jax.numpy as jnp

from attn_research.model.decoder import logits as output_logits
from attn_research.training.sampling import ScheduledSampling

MAX_LOGITS = 1 << 25  # elements of float32 logits alive at once (128 MB)
# Terms on the attention weights an `Objective` may add; a step reports `<term>_sum`.
ATTENTION_TERMS = ("coverage", "guided_alignment")
GUIDED_ALIGNMENT_LOSSES = ("ce", "mse")
GUIDED_EPSILON = 1e-6  # inside the log: sparse normalisers give gold links exactly 0


@dataclasses.dataclass(frozen=True)
class Objective:
  """The per-token training objective, from the `train` config section.

  Attributes:
    label_smoothing: ε of the cross-entropy (`train.label_smoothing`).
    coverage: λ of See et al. 2017's coverage loss (`train.coverage_loss`; 0: none).
    coverage_start: the optimizer step (0-based) from which it counts
      (`train.coverage_loss_start`): See et al. trained without it until convergence,
      then a short phase with it.
    guided_alignment: λ of the guided alignment loss (`train.guided_alignment`; 0: none).
    guided_alignment_loss: its distance, "ce" or "mse" (`train.guided_alignment_loss`).
    sampling: scheduled sampling of the decoder's inputs (`train.scheduled_sampling`).
  """

  label_smoothing: float = 0.0
  coverage: float = 0.0
  coverage_start: int = 0
  guided_alignment: float = 0.0
  guided_alignment_loss: str = "ce"
  sampling: ScheduledSampling = dataclasses.field(default_factory=ScheduledSampling)


def coverage_loss(weights: jax.Array, mask: jax.Array) -> jax.Array:
  """See et al. 2017's Σ_t Σ_j min(a_tj, c_tj) over the real target steps, with
  c_t = Σ_{t'<t} a_t' the attention received *before* step t (so the first step's term
  is 0; a coverage that included a_t would give min(a_t, c_t) = a_t, a constant 1 per
  step: OpenNMT-py #2013).

  Args:
    weights: `[batch, tgt_len, src_len]` attention weights.
    mask: `[batch, tgt_len]` bool, the real target steps.
  """
  received = jnp.cumsum(weights, axis=1)[:, :-1]
  before = jnp.concatenate([jnp.zeros_like(weights[:, :1]), received], axis=1)
  per_step = jnp.sum(jnp.minimum(weights, before), axis=-1)
  return jnp.sum(jnp.where(mask, per_step, 0.0).astype(jnp.float32))


def guided_alignment_loss(
  weights: jax.Array, gold: jax.Array, mask: jax.Array, kind: str = "ce"
) -> jax.Array:
  """Distance of the attention from gold alignments (Chen et al. 2016; Marian, fairseq),
  summed over the target steps that have gold links:

    ce:  −Σ_s G_ts log(a_ts + ε),   mse: Σ_s (a_ts − G_ts)²,

  ε = 1e-6 (a sparse normaliser's exact 0 on a gold link stays finite).

  Args:
    weights: `[batch, tgt_len, src_len]` attention weights a.
    gold: `[batch, tgt_len, src_len]` G, each aligned target step's links summing to 1.
    mask: `[batch, tgt_len]` bool, the real target steps.
  """
  weights = weights.astype(jnp.float32)
  if kind == "ce":
    per_step = -jnp.sum(gold * jnp.log(weights + GUIDED_EPSILON), axis=-1)
  elif kind == "mse":
    per_step = jnp.sum(jnp.square(weights - gold), axis=-1)
  else:
    raise ValueError(
      f"Unknown guided alignment loss {kind!r}; use one of {GUIDED_ALIGNMENT_LOSSES}."
    )
  aligned = mask & (jnp.sum(gold, axis=-1) > 0)
  return jnp.sum(jnp.where(aligned, per_step, 0.0))


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
