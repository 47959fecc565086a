"""Normalisers against float64 NumPy references written from the papers' definitions."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention.normalizers import NORMALIZERS, entmax, entmax15, sparsemax

jax.config.update("jax_enable_x64", False)


def _projection(z: np.ndarray) -> np.ndarray:
  """Sparsemax by brute force: of every support S, the p = z_S − (Σ z_S − 1)/|S| that is
  positive on S with every z_j outside S at most τ (Martins & Astudillo 2016, Prop. 1)."""
  for size in range(1, len(z) + 1):
    for support in itertools.combinations(range(len(z)), size):
      idx = list(support)
      tau = (z[idx].sum() - 1.0) / size
      p = np.zeros_like(z)
      p[idx] = z[idx] - tau
      outside = [j for j in range(len(z)) if j not in support]
      if (p[idx] > 0).all() and all(z[j] <= tau for j in outside):
        return p
  raise AssertionError("no support")


def _entmax_reference(z: np.ndarray, alpha: float) -> np.ndarray:
  """α-entmax p = [(α−1)z − τ]_+^{1/(α−1)}, Σp = 1, with τ by 200 float64 bisection steps."""
  x = (alpha - 1.0) * z

  def total(tau):
    return (np.maximum(x - tau, 0.0) ** (1.0 / (alpha - 1.0))).sum()

  lo, hi = x.max() - 1.0, x.max()
  for _ in range(200):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if total(mid) >= 1.0 else (lo, mid)
  return np.maximum(x - lo, 0.0) ** (1.0 / (alpha - 1.0))


def _reference(name: str, z: np.ndarray, alpha: float) -> np.ndarray:
  if name == "softmax":
    e = np.exp(z - z.max())
    return e / e.sum()
  if name == "sparsemax":
    return _projection(z)
  return _entmax_reference(z, 1.5 if name == "entmax15" else alpha)


def _rows(seed: int, n: int = 6, width: int = 7) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.normal(0, 2, (n, width))


CASES = [
  ("softmax", 1.0),
  ("sparsemax", 2.0),
  ("entmax15", 1.5),
  ("entmax", 1.5),
  ("entmax", 1.2),
  ("entmax", 3.0),
]


@pytest.mark.parametrize("name, alpha", CASES)
def test_weights_and_gradients_match_the_float64_reference_with_padding(name, alpha):
  normalize = NORMALIZERS.get(name)
  z = _rows(0)
  lengths = np.array([7, 5, 3, 1, 6, 2])
  mask = np.arange(7)[None] < lengths[:, None]
  g = np.random.default_rng(1).normal(size=z.shape)

  def weighted(e):  # Σ g·p, and p
    p = normalize(e, jnp.asarray(mask), alpha)
    return jnp.sum(p * g), p

  # The weights and their gradient compiled as one program (α static: a Python float).
  grad, got = (np.asarray(x) for x in jax.jit(jax.grad(weighted, has_aux=True))(z))
  for row, n in enumerate(lengths):
    want = _reference(name, z[row, :n], alpha)
    np.testing.assert_allclose(got[row, :n], want, atol=2e-6)
    assert (got[row, n:] == 0).all() and (grad[row, n:] == 0).all()
    # The gradient of Σ g·p against central differences of the reference, in float64.
    eps = 1e-6
    numeric = [
      (
        _reference(name, z[row, :n] + eps * np.eye(n)[j], alpha) @ g[row, :n]
        - _reference(name, z[row, :n] - eps * np.eye(n)[j], alpha) @ g[row, :n]
      )
      / (2 * eps)
      for j in range(n)
    ]
    np.testing.assert_allclose(grad[row, :n], numeric, atol=2e-4)


@jax.jit
def _published(z, both, tfa):
  """Every normaliser call of `test_published_vectors`, compiled as one program."""
  ones = jnp.ones(z.shape, bool)
  return (
    sparsemax(z, ones),
    entmax15(z, ones),
    entmax(both, jnp.ones(both.shape, bool), 1.33),
    sparsemax(tfa, jnp.ones(tfa.shape, bool)),
  )


def test_published_vectors():
  z = np.array([[-2.0, 0.0, 0.5]], np.float32)
  both = np.array([[-1.0, 0.0, 0.5], [1.0, 2.0, 3.5]], np.float32)
  tfa = np.array([[-1.0, 0.0, 1.0], [-5.0, 1.0, 2.0]], np.float32)
  sparse, entmax15_, bisected, one_hot = _published(z, both, tfa)
  np.testing.assert_allclose(sparse, [[0, 0.25, 0.75]], atol=1e-6)
  np.testing.assert_allclose(entmax15_, [[0, 0.3260, 0.6740]], atol=1e-4)
  np.testing.assert_allclose(
    bisected,
    [[0.0460, 0.3276, 0.6264], [0.0026, 0.1012, 0.8963]],
    atol=1e-4,
  )
  # TFA's: sparsemax([[−1, 0, 1], [−5, 1, 2]]) is one-hot.
  np.testing.assert_allclose(one_hot, [[0, 0, 1], [0, 0, 1]], atol=1e-7)


def test_bisection_meets_the_exact_sorts_and_softmax_as_alpha_falls_to_one():
  z = jnp.asarray(_rows(2, 8, 11), jnp.float32)

  @jax.jit  # one program for every normaliser
  def normalized(z):
    mask = jnp.ones(z.shape, bool)
    exact = (sparsemax(z, mask), entmax15(z, mask), jax.nn.softmax(z))
    return tuple(entmax(z, mask, alpha) for alpha in (2.0, 1.5, 1.001)), exact

  (two, one_and_a_half, near_one), (sparse, entmax15_, softmax) = normalized(z)
  np.testing.assert_allclose(two, sparse, atol=1e-6)
  np.testing.assert_allclose(one_and_a_half, entmax15_, atol=1e-6)
  np.testing.assert_allclose(near_one, softmax, atol=2e-3)


@pytest.mark.parametrize("name, alpha", CASES)
def test_empty_rows_peaked_rows_and_large_sources_stay_finite(name, alpha):
  normalize = NORMALIZERS.get(name)
  z = jnp.asarray(1000 * _rows(3, 4, 512), jnp.float32)  # entmax PR #32's peaked case
  mask = jnp.asarray(np.arange(512)[None] < np.array([[512], [300], [1], [0]]))

  @jax.jit  # one program (α static: a Python float)
  def run(z, mask):
    p, vjp = jax.vjp(lambda e: normalize(e, mask, alpha), z)
    (grad,) = vjp(jnp.ones_like(p))
    return p, grad, normalize(z[:2] + 7.0, mask[:2], alpha)

  p, grad, shifted = (np.asarray(x) for x in run(z, mask))
  assert np.isfinite(p).all() and np.isfinite(grad).all()
  np.testing.assert_allclose(p[:3].sum(-1), 1.0, atol=1e-5)
  assert (p[3] == 0).all() and (grad[3] == 0).all() and p[2, 0] == 1.0
  # Shifting the energies changes nothing.
  np.testing.assert_allclose(shifted, p[:2], atol=1e-6)


def test_sparse_normalisers_give_exact_zeros():
  z = jnp.array([[3.0, 0.0, -4.0, 2.9]])  # −4 is below every τ ≥ max − 1 of (α−1)z
  mask = jnp.ones((1, 4), bool)

  @jax.jit  # one program for every normaliser
  def normalized(z, mask):
    return [NORMALIZERS.get(name)(z, mask, alpha) for name, alpha in CASES]

  softmax, *sparse = (np.asarray(p) for p in normalized(z, mask))
  for (name, _), p in zip(CASES[1:], sparse, strict=True):
    assert p[0, 2] == 0.0, name
  assert (softmax > 0).all()
  with pytest.raises(ValueError, match="α > 1"):
    entmax(z, mask, 1.0)
