import jax
import jax.numpy as jnp
import numpy as np

from attn_research.attention import masked_softmax

# One program per call: op by op, each of masked_softmax's ops compiles alone.
_masked_softmax = jax.jit(masked_softmax)


def test_padding_gets_exactly_zero_even_against_huge_scores():
  scores = jnp.array([[1e30, -1e30, 3.0], [0.0, 0.0, 0.0]], jnp.float32)
  mask = jnp.array([[False, True, True], [False, False, False]])
  weights = np.asarray(_masked_softmax(scores, mask))
  np.testing.assert_array_equal(weights[0], [0.0, 0.0, 1.0])
  np.testing.assert_array_equal(weights[1], [0.0, 0.0, 0.0])  # an empty row, not NaN


def test_softmax_over_real_positions_in_bfloat16():
  scores = jnp.array([[1.0, 2.0, 3.0, 50.0]], jnp.bfloat16)
  mask = jnp.array([[True, True, True, False]])
  weights = _masked_softmax(scores, mask)
  assert weights.dtype == jnp.bfloat16
  e = np.exp([1.0, 2.0, 3.0])
  np.testing.assert_allclose(np.asarray(weights, np.float32)[0], [*(e / e.sum()), 0.0], atol=4e-3)


def test_float64_is_not_narrowed_to_float32():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(3, 7)) * 10.0
  mask = np.arange(7)[None] < np.array([7, 3, 1])[:, None]
  with jax.enable_x64(True):
    weights = _masked_softmax(jnp.asarray(scores, jnp.float64), jnp.asarray(mask))
    assert weights.dtype == jnp.float64
    weights = np.asarray(weights)
  e = np.where(mask, np.exp(scores - np.where(mask, scores, -np.inf).max(-1, keepdims=True)), 0.0)
  np.testing.assert_allclose(weights, e / e.sum(-1, keepdims=True), rtol=0, atol=1e-15)
