"""Alignment types: which source positions a decoder step attends to, and how.

An alignment takes queries `[batch, q, query_size]` with their target positions
`[batch, q]` (0-based decoder step t) and returns the context `[batch, q, value_size]`
and weights over the full source `[batch, q, src_len]`, so heatmaps and alignment error
work the same for every variant.

Local alignments (Luong et al. 2015 §3.2) on long sources score only the 2D+1 positions
of their window: the window's prepared keys and values are gathered, so the cost of a
decoder step does not grow with the source length; the window's weights are then
scattered into the full-length weight row. On sources of at most 2·(2D+1) positions the
gather and scatter cost more than they save, so there every position is scored and those
outside the window masked: the same weights, chosen per padded shape at trace time.
Positions outside the sentence get no weight (Luong's footnote: "ignore the part outside
the sentence"). The paper's positions are 1-based: s = 1..S and p_t ∈ [0, S]; array
index i holds s = i + 1.

With H heads (`model.attention.heads`) the score gives energies `[batch, q, H, …]`; each
head is normalised on its own over the same positions (one window, one local-p p_t and
Gaussian for all heads), attends over its chunk of d / H dimensions of the values, and
the heads' contexts are concatenated (Sockeye's `mhdot`, RNMT+). The weights returned
are the heads' mean, as Sockeye's, for heatmaps, alignment error and coverage.
"""

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.attention.memory import Memory
from attn_research.attention.normalizers import NORMALIZERS
from attn_research.attention.scores import Score, luong_uniform, split_heads
from attn_research.registry import Registry

if TYPE_CHECKING:
  from attn_research.attention.attention import AttentionConfig

ALIGNMENTS: Registry[type["Alignment"]] = Registry("alignment", "model.attention.alignment")


def _gather(tree, index: jax.Array):
  """`[batch, src_len, …]` leaves → `[batch, q, width, …]` at `index` `[batch, q, width]`."""

  def take(x):
    flat = index.reshape(index.shape[0], -1)
    picked = jnp.take_along_axis(x, flat.reshape(flat.shape + (1,) * (x.ndim - 2)), axis=1)
    return picked.reshape(index.shape + x.shape[2:])

  return jax.tree.map(take, tree)


def _scatter(window_weights: jax.Array, index: jax.Array, src_len: int) -> jax.Array:
  """Window weights `[batch, q, width]` at `index` → full rows `[batch, q, src_len]`."""
  batch, queries, _ = index.shape
  rows = jnp.zeros((batch, queries, src_len), window_weights.dtype)
  b = jnp.arange(batch)[:, None, None]
  q = jnp.arange(queries)[None, :, None]
  return rows.at[b, q, index].add(window_weights)


def _context(weights: jax.Array, values: jax.Array) -> jax.Array:
  """Weights `[b, q, s]` (or per head `[b, q, H, s]`) over full `[b, s, d]` values, or
  over windowed `[b, q, w, d]` ones → `[b, q, d]`, the heads' contexts concatenated."""
  full = values.ndim == 3
  if weights.ndim == 3:
    return jnp.einsum("bqs,bsd->bqd" if full else "bqw,bqwd->bqd", weights, values)
  heads = weights.shape[2]
  spec = "bqhs,bshd->bqhd" if full else "bqhw,bqwhd->bqhd"
  context = jnp.einsum(spec, weights, split_heads(values, heads))
  return context.reshape(*context.shape[:2], -1)


class Alignment(nn.Module):
  """Base of the alignments; every one takes the same config.

  Attributes:
    config: `model.attention`; an alignment reads `window` (D), `size` (local-p's
      predictor; 0: the query size), `init`, `sigma` (local-p's σ; 0: D/2), `normalizer`,
      `entmax_alpha` and `heads`.
  """

  config: "AttentionConfig"

  def per_head(self, x: jax.Array) -> jax.Array:
    """`[b, q, s]` → `[b, q, 1, s]` under multi-head attention, to broadcast over heads."""
    return x if self.config.heads == 1 else x[..., None, :]

  def normalize(self, energies: jax.Array, mask: jax.Array) -> jax.Array:
    """Weights over the positions `mask` `[b, q|1, s]` holds, exactly 0 elsewhere."""
    return NORMALIZERS.get(self.config.normalizer)(
      energies, self.per_head(mask), self.config.entmax_alpha
    )

  def head_mean(self, weights: jax.Array) -> jax.Array:
    return weights if self.config.heads == 1 else jnp.mean(weights, axis=2)


def gathers_window(src_len: int, window: int) -> bool:
  """Whether a local alignment over `src_len` padded positions gathers its window."""
  return src_len > 2 * (2 * window + 1)


class _Local(Alignment):
  """A window of 2D+1 source positions around each decoder step's p_t."""

  def window_start(self, query, memory, positions):
    """Returns the window's first 0-based index `[b, q]` and p_t (`None` for local-m)."""
    raise NotImplementedError

  def __call__(self, score: Score, query: jax.Array, memory: Memory, positions: jax.Array):
    lengths = memory.mask.sum(axis=-1)[:, None, None]
    first, p_t = self.window_start(query, memory, positions)
    src_len = memory.mask.shape[1]
    gather = gathers_window(src_len, self.config.window)
    if gather:  # the window's positions only: [b, q, 2D+1]
      index = first[..., None] + jnp.arange(2 * self.config.window + 1)
      safe = jnp.clip(index, 0, src_len - 1)
      energies = score.compare(query, _gather(memory.keys, safe))
    else:  # every position: [src_len]
      index = jnp.arange(src_len)
      energies = score.compare(query, memory.keys)
    offset = index - first[..., None]
    inside = (offset >= 0) & (offset <= 2 * self.config.window) & (index >= 0) & (index < lengths)
    if p_t is not None:  # the real-valued window [p_t − D, p_t + D] in 1-based s
      inside &= jnp.abs(index + 1 - p_t[..., None]) <= self.config.window
    weights = self.normalize(energies, inside)
    if p_t is not None:  # Luong Eq. 10: align(h_t, h̄_s) · exp(−(s − p_t)² / 2σ²), σ = D/2
      sigma = self.config.sigma or self.config.window / 2.0
      distance = (index + 1).astype(p_t.dtype) - p_t[..., None]
      gaussian = jnp.exp(-jnp.square(distance) / (2.0 * sigma**2))
      weights = (weights * self.per_head(gaussian)).astype(weights.dtype)
    if not gather:
      return _context(weights, memory.values), self.head_mean(weights)
    context = _context(weights, _gather(memory.values, safe))
    return context, _scatter(self.head_mean(weights), safe, src_len)


@ALIGNMENTS.register("global")
class GlobalAlignment(Alignment):
  """Luong's global attention (Eq. 7): a softmax (or another normaliser) over every real
  source position."""

  def __call__(self, score: Score, query: jax.Array, memory: Memory, positions: jax.Array):
    del positions
    weights = self.normalize(score.compare(query, memory.keys), memory.mask[:, None, :])
    return _context(weights, memory.values), self.head_mean(weights)


@ALIGNMENTS.register("local_m")
class LocalMonotonic(_Local):
  """Luong's local-m: p_t = t (monotonic alignment), window [t − D, t + D], weights the
  softmax over the window's real positions."""

  def window_start(self, query, memory, positions):
    return positions - self.config.window, None


@ALIGNMENTS.register("local_p")
class LocalPredictive(_Local):
  """Luong's local-p: p_t = S · sigmoid(v_pᵀ tanh(W_p h_t)) with S the real source length
  (Eq. 9), then the window's softmax times a Gaussian centred at p_t (Eq. 10). As in the
  paper the weights are not renormalised after the Gaussian. W_p and v_p are U(−0.1, 0.1)
  under initialization="paper" (Luong §4.1).
  """

  @nn.compact
  def window_start(self, query, memory, positions):
    del positions
    size = self.config.size or query.shape[-1]
    kernel_init = luong_uniform if self.config.init == "paper" else nn.initializers.lecun_normal()
    hidden = jnp.tanh(nn.Dense(size, use_bias=False, kernel_init=kernel_init, name="w_p")(query))
    v_init = luong_uniform if self.config.init == "paper" else nn.initializers.normal(size**-0.5)
    v_p = self.param("v_p", v_init, (size,))
    # float32 whatever the computation dtype: bfloat16 spaces positions above 64 by 0.5.
    lengths = memory.mask.sum(axis=-1).astype(jnp.float32)
    p_t = lengths[:, None] * jax.nn.sigmoid((hidden @ v_p).astype(jnp.float32))  # [b, q] in [0, S]
    # Integers s with |s − p_t| ≤ D lie in floor(p_t) − D … floor(p_t) + D (1-based).
    return jnp.floor(p_t).astype(jnp.int32) - self.config.window - 1, p_t  # as a 0-based index
