"""How energies become attention weights (`model.attention.normalizer`).

Every normaliser maps `[..., src_len]` energies and a mask of real positions to weights on
the probability simplex of the real positions: padding gets exactly 0 (never NaN) and a
row without real positions gets all zeros, so an empty source gives a zero context.

  * `softmax`: exp(e) / Σ exp(e), dense (Bahdanau 2015, Luong 2015).
  * `sparsemax`: the Euclidean projection onto the simplex, [e − τ]_+ (Martins & Astudillo
    2016), computed exactly by sorting.
  * `entmax15`: 1.5-entmax, [e/2 − τ]_+² (Peters, Niculae & Martins 2019), exactly by
    sorting (their Algorithm 2, as `entmax.entmax15`).
  * `entmax`: α-entmax, [(α−1)e − τ]_+^{1/(α−1)} with α = `model.attention.entmax_alpha`,
    τ by 50 bisection steps and the result renormalised (as `entmax.entmax_bisect`);
    α = 2 is sparsemax, α → 1 approaches softmax.

The sparse ones have closed-form backward passes (Peters et al. 2019, §3.3):
∂p/∂e · g = s ⊙ g − s ⟨s, g⟩ / Σ s with s = p^{2−α} on the support (0 elsewhere), 1 on the
support for sparsemax. They run in float32 or wider, as the softmax does.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from attn_research.attention.masking import masked_softmax
from attn_research.registry import Registry

Normalizer = Callable[[jax.Array, jax.Array, float], jax.Array]
NORMALIZERS: Registry[Normalizer] = Registry("attention normalizer", "model.attention.normalizer")
BISECTION_STEPS = 50


@NORMALIZERS.register("softmax")
def softmax(scores: jax.Array, mask: jax.Array, alpha: float = 1.0) -> jax.Array:
  """`masked_softmax`: dense weights."""
  del alpha
  return masked_softmax(scores, mask)


def _prepared(scores: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Energies in float32 (or wider) minus their row's largest real one, −∞ on padding;
  and the mask broadcast to them."""
  dtype = jnp.promote_types(scores.dtype, jnp.float32)
  mask = jnp.broadcast_to(mask, scores.shape)
  z = jnp.where(mask, scores.astype(dtype), -jnp.inf)
  top = jnp.max(z, axis=-1, keepdims=True)
  return jnp.where(mask, z - jnp.where(jnp.isfinite(top), top, 0.0), -jnp.inf), mask


def _sorted(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """z sorted in descending order with −∞ (padding) replaced by 0, which of them are
  real, and the ranks 1…S."""
  descending = -jnp.sort(-z, axis=-1)
  real = jnp.isfinite(descending)
  ranks = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
  return jnp.where(real, descending, 0.0), real, ranks


def _at_support(values: jax.Array, support: jax.Array) -> jax.Array:
  """`values[..., k* − 1]` with k* = Σ support (the last index of the support)."""
  k = jnp.maximum(jnp.sum(support, axis=-1, keepdims=True), 1)
  return jnp.take_along_axis(values, k - 1, axis=-1)


def _sparsemax_forward(z: jax.Array) -> jax.Array:
  """Martins & Astudillo 2016, Alg. 1: k(z) = max{k : 1 + k z₍k₎ > Σ_{j≤k} z₍j₎},
  τ = (Σ_{j≤k(z)} z₍j₎ − 1) / k(z)."""
  descending, real, ranks = _sorted(z)
  cumulative = jnp.cumsum(descending, axis=-1)
  support = real & (1.0 + ranks * descending > cumulative)
  k = jnp.maximum(jnp.sum(support, axis=-1, keepdims=True), 1).astype(z.dtype)
  tau = (_at_support(cumulative, support) - 1.0) / k
  return jnp.maximum(z - tau, 0.0)


def _entmax15_forward(z: jax.Array) -> jax.Array:
  """Peters et al. 2019, Alg. 2 on x = z/2: τ_k = μ_k − sqrt(max((1 − k(μ²_k − μ_k²))/k, 0))
  from the means μ_k, μ²_k of the k largest x and their squares; k* = #{k : τ_k ≤ x₍k₎}."""
  x = z / 2.0
  descending, real, ranks = _sorted(x)
  mean = jnp.cumsum(descending, axis=-1) / ranks
  mean_sq = jnp.cumsum(jnp.square(descending), axis=-1) / ranks
  delta = (1.0 - ranks * (mean_sq - jnp.square(mean))) / ranks
  tau = mean - jnp.sqrt(jnp.maximum(delta, 0.0))
  support = real & (tau <= descending)
  return jnp.square(jnp.maximum(x - _at_support(tau, support), 0.0))


def _bisection_forward(z: jax.Array, alpha: float) -> jax.Array:
  """α-entmax: τ with Σ [(α−1)z − τ]_+^{1/(α−1)} = 1 by bisection on [max − 1,
  max − (1/d)^{α−1}] (d real positions), then renormalised (`entmax_bisect`'s
  `ensure_sum_one`). The step keeps the lower end while the sum is ≥ 1 (entmax PR #32)."""
  x = z * (alpha - 1.0)
  d = jnp.maximum(jnp.sum(jnp.isfinite(x), axis=-1, keepdims=True), 1).astype(x.dtype)
  # Rows are shifted so that their largest real energy is 0.
  lo = jnp.full(d.shape, -1.0, x.dtype)
  width = -((1.0 / d) ** (alpha - 1.0)) - lo

  def mass(tau):
    return jnp.maximum(x - tau, 0.0) ** (1.0 / (alpha - 1.0))

  def step(_, carry):
    lo, width, _ = carry
    width = width / 2.0
    middle = lo + width
    p = mass(middle)
    lo = jnp.where(jnp.sum(p, axis=-1, keepdims=True) - 1.0 >= 0.0, middle, lo)
    return lo, width, p

  _, _, p = jax.lax.fori_loop(0, BISECTION_STEPS, step, (lo, width, jnp.zeros_like(x)))
  total = jnp.sum(p, axis=-1, keepdims=True)
  return p / jnp.where(total > 0.0, total, 1.0)


_FORWARDS = {
  "sparsemax": lambda z, alpha: _sparsemax_forward(z),
  "entmax15": lambda z, alpha: _entmax15_forward(z),
  "bisection": _bisection_forward,
}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _sparse(scores: jax.Array, mask: jax.Array, alpha: float, method: str) -> jax.Array:
  """α-entmax of the real positions by `method` (one of `_FORWARDS`)."""
  z, mask = _prepared(scores, mask)
  return jnp.where(mask, _FORWARDS[method](z, alpha), 0.0).astype(scores.dtype)


def _sparse_forward(scores, mask, alpha, method):
  p = _sparse(scores, mask, alpha, method)
  return p, p


def _sparse_backward(alpha, method, p, g):
  dtype = jnp.promote_types(p.dtype, jnp.float32)
  p, g = p.astype(dtype), g.astype(dtype)
  positive = p > 0.0
  s = jnp.where(positive, jnp.where(positive, p, 1.0) ** (2.0 - alpha), 0.0)
  total = jnp.sum(s, axis=-1, keepdims=True)
  q = jnp.sum(s * g, axis=-1, keepdims=True) / jnp.where(total > 0.0, total, 1.0)
  return (s * (g - q)).astype(p.dtype), None


_sparse.defvjp(_sparse_forward, _sparse_backward)


@NORMALIZERS.register("sparsemax")
def sparsemax(scores: jax.Array, mask: jax.Array, alpha: float = 2.0) -> jax.Array:
  """Sparsemax, exact (α = 2 whatever `alpha`)."""
  del alpha
  return _sparse(scores, mask, 2.0, "sparsemax")


@NORMALIZERS.register("entmax15")
def entmax15(scores: jax.Array, mask: jax.Array, alpha: float = 1.5) -> jax.Array:
  """1.5-entmax, exact (α = 1.5 whatever `alpha`)."""
  del alpha
  return _sparse(scores, mask, 1.5, "entmax15")


@NORMALIZERS.register("entmax")
def entmax(scores: jax.Array, mask: jax.Array, alpha: float = 1.5) -> jax.Array:
  """α-entmax by bisection, α > 1."""
  if not alpha > 1.0:
    raise ValueError(f"entmax needs α > 1 (α = 1 is softmax), got {alpha}.")
  return _sparse(scores, mask, float(alpha), "bisection")
