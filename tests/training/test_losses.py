import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.training import losses, steps
from attn_research.training.losses import Objective, token_nll
from tests.conftest import tiny_seq2seq

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
  nll = jax.jit(functools.partial(token_nll, label_smoothing=eps, max_logits=max_logits))
  total, tokens = nll(features, matrix, targets, mask)
  np.testing.assert_allclose(total, _numpy_nll(features, matrix, targets, mask, eps), rtol=1e-5)
  assert tokens == 4


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_token_nll_gradient_in_chunks_equals_one_chunk(eps):
  features, matrix, targets, mask = (jnp.asarray(x) for x in _inputs())

  def grads(max_logits):
    loss = lambda f, w: token_nll(f, w, targets, mask, eps, max_logits=max_logits)[0]  # noqa: E731
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(features, matrix)

  for chunked, whole in zip(grads(4 * VOCAB), grads(1 << 25), strict=True):
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def _numpy_coverage_loss(weights, mask):
  """See et al. 2017, step by step: loss_t = Σ_j min(a_tj, c_tj), then c += a_t."""
  total = 0.0
  for b in range(weights.shape[0]):
    c = np.zeros(weights.shape[2])
    for t in range(weights.shape[1]):
      if mask[b, t]:
        total += np.minimum(weights[b, t], c).sum()
      c = c + weights[b, t]
  return total


def test_coverage_loss_reads_the_coverage_before_each_step():
  rng = np.random.default_rng(1)
  weights = rng.dirichlet(np.ones(4), size=(3, 5))  # [batch 3, tgt 5, src 4]
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
  coverage_loss = jax.jit(losses.coverage_loss)  # a program per shape, not per operation
  loss = float(coverage_loss(jnp.asarray(weights), jnp.asarray(mask)))
  np.testing.assert_allclose(loss, _numpy_coverage_loss(weights, mask), rtol=1e-6)
  # The first step has no coverage yet: a one-step target costs nothing.
  assert float(coverage_loss(jnp.asarray(weights[:, :1]), jnp.asarray(mask[:, :1]))) == 0.0
  # A coverage that already held a_t (OpenNMT-py #2013) would cost 1 per step.
  assert abs(loss - mask.sum()) > 1.0
  # Attending to a new word every step costs nothing; attending twice costs the overlap.
  one_hot = np.eye(4)[None, :4]
  assert float(coverage_loss(jnp.asarray(one_hot), np.ones((1, 4), bool))) == 0.0
  again = np.eye(4)[None, [0, 0, 1]]
  assert float(coverage_loss(jnp.asarray(again), np.ones((1, 3), bool))) == 1.0


def test_the_coverage_loss_weight_scales_its_term_linearly():
  model = tiny_seq2seq(attention_score="additive", attention_coverage="see")
  rng = np.random.default_rng(2)
  src = rng.integers(4, 23, (3, 6)).astype(np.int32)
  tgt = rng.integers(4, 17, (3, 5)).astype(np.int32)
  batch = {  # host arrays, rolled on the host: nothing computed op by op
    "src": src,
    "src_mask": np.arange(6)[None] < np.array([[6], [3], [1]]),
    "tgt_in": tgt,
    "tgt_out": np.roll(tgt, -1, axis=1),
    "tgt_mask": np.arange(5)[None] < np.array([[5], [2], [4]]),
  }
  params = jax.jit(model.init)(jax.random.key(0), src, batch["src_mask"], tgt)["params"]

  def loss(weight, start=0, step=0):
    objective = Objective(coverage=weight, coverage_start=start)
    value, sums = jax.jit(
      lambda p, step: steps.loss(p, batch, jax.random.key(1), model, objective, step=step)
    )(params, step)
    return float(value), sums

  plain, plain_sums = loss(0.0)
  half, sums = loss(0.5)
  double, _ = loss(2.0)
  assert "coverage_sum" not in plain_sums and float(sums["coverage_sum"]) > 0.1
  per_token = float(sums["coverage_sum"]) / float(sums["tokens"])
  np.testing.assert_allclose(half - plain, 0.5 * per_token, rtol=1e-5)
  np.testing.assert_allclose(double - plain, 2.0 * per_token, rtol=1e-5)
  # Before train.coverage_loss_start the term is reported but not trained on.
  before, before_sums = loss(0.5, start=100, step=99)
  after, _ = loss(0.5, start=100, step=100)
  assert before == plain and after == half
  assert float(before_sums["coverage_sum"]) == float(sums["coverage_sum"])


def test_guided_alignment_against_numpy():
  rng = np.random.default_rng(3)
  weights = rng.dirichlet(np.ones(5), size=(2, 4))  # [batch 2, tgt 4, src 5]
  gold = np.zeros((2, 4, 5))
  gold[0, 0, [1, 3]] = 0.5
  gold[0, 1, 2] = 1.0
  gold[1, 0, 0] = 1.0
  gold[1, 3, 4] = 1.0  # a padded target step: ignored
  mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
  ce = -(gold * np.log(weights + 1e-6)).sum(-1)
  mse = np.square(weights - gold).sum(-1)
  aligned = mask & (gold.sum(-1) > 0)  # row 0 step 2 and row 1 step 1 have no links
  guided_alignment_loss = jax.jit(losses.guided_alignment_loss, static_argnames="kind")
  for kind, per_step in (("ce", ce), ("mse", mse)):
    loss = guided_alignment_loss(
      jnp.asarray(weights), jnp.asarray(gold), jnp.asarray(mask), kind=kind
    )
    np.testing.assert_allclose(float(loss), per_step[aligned].sum(), rtol=1e-5)
  # a = G: the CE is G's entropy (here ln 2 for the 1-to-2 row), the MSE 0.
  exact = jnp.asarray(gold)
  assert abs(float(guided_alignment_loss(exact, exact, jnp.asarray(mask))) - np.log(2)) < 1e-4
  assert float(guided_alignment_loss(exact, exact, jnp.asarray(mask), kind="mse")) == 0.0
  # A sparse normaliser's exact 0 on a gold link costs −log ε, not ∞ (and no NaN gradient).
  zero = jnp.asarray(np.zeros_like(gold, np.float32))
  value, grad = jax.jit(
    jax.value_and_grad(lambda w: guided_alignment_loss(w, exact, jnp.asarray(mask)))
  )(zero)
  np.testing.assert_allclose(float(value), -np.log(1e-6) * aligned.sum(), rtol=1e-5)
  assert np.all(np.isfinite(np.asarray(grad)))
