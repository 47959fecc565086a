"""Global attention against a float64 NumPy implementation written from Luong Eq. 7."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention import Attention, masked_softmax
from attn_research.errors import ConfigError

BATCH, SRC, TGT, DIM = 4, 7, 5, 6
LENGTHS = np.array([7, 3, 1, 5])


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  query = rng.normal(size=(BATCH, TGT, DIM))
  values = rng.normal(size=(BATCH, SRC, DIM))
  mask = np.arange(SRC)[None, :] < LENGTHS[:, None]
  values[~mask] = rng.normal(size=values[~mask].shape) * 100  # padding must not leak
  return query, values, mask


def _reference(query, values, mask, w_a=None):
  """a_t(s) = exp(score(h_t, h̄_s)) / Σ_{s' real} exp(score(h_t, h̄_s')), c_t = Σ_s a_t(s) h̄_s."""
  weights = np.zeros((BATCH, TGT, SRC))
  context = np.zeros((BATCH, TGT, DIM))
  for b in range(BATCH):
    for t in range(TGT):
      real = np.flatnonzero(mask[b])
      score = np.array(
        [query[b, t] @ (values[b, s] if w_a is None else w_a @ values[b, s]) for s in real]
      )
      e = np.exp(score - score.max())
      weights[b, t, real] = e / e.sum()
      context[b, t] = weights[b, t] @ values[b]
  return context, weights


@pytest.mark.parametrize("score", ["dot", "general"])
def test_global_attention_matches_numpy(score):
  query, values, mask = _inputs()
  layer = Attention(score=score, alignment="global", query_size=DIM)
  f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
  params = layer.init(
    jax.random.key(0),
    f32(query),
    f32(values),
    mask,
    method=lambda m, q, v, k: m(q, m.prepare(v, k)),
  )

  def run(q, v, k):
    return layer.apply(params, q, v, k, method=lambda m, q, v, k: m(q, m.prepare(v, k)))

  context, weights = run(f32(query), f32(values), mask)
  w_a = None
  if score == "general":
    w_a = np.asarray(params["params"]["score"]["w_a"]["kernel"], np.float64).T  # [query, key]
  ref_context, ref_weights = _reference(query, values, mask, w_a)
  np.testing.assert_allclose(weights, ref_weights, atol=2e-6)
  np.testing.assert_allclose(context, ref_context, rtol=1e-4, atol=1e-4)
  assert np.all(np.asarray(weights)[~np.broadcast_to(mask[:, None], weights.shape)] == 0.0)
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)

  # One query at a time (a decoder step) gives the same as all target steps at once.
  for t in range(TGT):
    c_t, a_t = run(f32(query[:, t]), f32(values), mask)
    np.testing.assert_allclose(a_t, weights[:, t], atol=1e-6)
    np.testing.assert_allclose(c_t, context[:, t], atol=1e-5)


def test_empty_source_gives_zero_context_and_finite_gradients():
  query, values, mask = _inputs()
  mask[2] = False  # a fully padded source
  layer = Attention(score="general", alignment="global", query_size=DIM)
  apply = lambda m, q, v, k: m(q, m.prepare(v, k))  # noqa: E731
  q, v = jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32)
  params = layer.init(jax.random.key(1), q, v, mask, method=apply)

  def loss(params, q, v):
    context, weights = layer.apply(params, q, v, mask, method=apply)
    return jnp.sum(context**2) + jnp.sum(weights)

  context, weights = jax.jit(lambda p, q, v: layer.apply(p, q, v, mask, method=apply))(params, q, v)
  assert np.all(np.asarray(context)[2] == 0.0) and np.all(np.asarray(weights)[2] == 0.0)
  grads = jax.grad(loss, argnums=(0, 1, 2))(params, q, v)
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert np.all(np.asarray(grads[2])[~mask] == 0.0)  # padding receives no gradient


def test_masked_softmax_is_exact_zero_on_padding_with_huge_scores():
  scores = jnp.array([[1e30, -1e30, 3.0], [0.0, 0.0, 0.0]], jnp.float32)
  mask = jnp.array([[False, True, True], [False, False, False]])
  weights = np.asarray(masked_softmax(scores, mask))
  np.testing.assert_array_equal(weights[0], [0.0, 0.0, 1.0])
  np.testing.assert_array_equal(weights[1], [0.0, 0.0, 0.0])


def test_dot_score_rejects_mismatched_sizes():
  layer = Attention(score="dot", alignment="global", query_size=DIM + 1)
  query, values, mask = _inputs()
  with pytest.raises(ConfigError, match=r"model\.attention\.score=general"):
    layer.init(
      jax.random.key(0),
      jnp.asarray(query[..., :1]),
      jnp.asarray(values),
      mask,
      method=lambda m, q, v, k: m(q, m.prepare(v, k)),
    )
