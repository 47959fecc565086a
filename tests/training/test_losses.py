import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.training.losses import token_nll

VOCAB, SIZE = 5, 4


def _inputs():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(2, 3, SIZE))
  matrix = rng.normal(size=(SIZE, VOCAB))
  targets = rng.integers(0, VOCAB, (2, 3))
  mask = np.array([[True, True, False], [True, False, True]])
  return features, matrix, targets, mask


def _numpy_nll(features, matrix, targets, mask, eps):
  logits = features @ matrix
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
  smoothed = (1 - eps) * nll - eps * logp.mean(-1)  # ε spread over the vocabulary
  return smoothed[mask].sum()


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("max_logits", [1 << 25, 2 * VOCAB, 4 * VOCAB])
def test_token_nll_in_chunks_equals_numpy(eps, max_logits):
  """One chunk, 3 chunks of 2 rows, and 2 chunks of 4 rows (the last padded)."""
  features, matrix, targets, mask = _inputs()
  total, tokens = token_nll(features, matrix, targets, mask, eps, max_logits=max_logits)
  np.testing.assert_allclose(total, _numpy_nll(features, matrix, targets, mask, eps), rtol=1e-5)
  assert tokens == 4


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_token_nll_gradient_in_chunks_equals_one_chunk(eps):
  features, matrix, targets, mask = (jnp.asarray(x) for x in _inputs())

  def grads(max_logits):
    loss = lambda f, w: token_nll(f, w, targets, mask, eps, max_logits=max_logits)[0]  # noqa: E731
    return jax.grad(loss, argnums=(0, 1))(features, matrix)

  for chunked, whole in zip(grads(4 * VOCAB), grads(1 << 25), strict=True):
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
