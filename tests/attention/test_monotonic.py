"""Monotonic attention (Raffel et al. 2017) and MoChA (Chiu & Raffel 2018) against float64
NumPy: the expectation against brute force over every outcome of the stochastic process,
the layer against the papers' double sums, the hard process against a plain scan."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention import AttentionConfig, monotonic
from attn_research.attention.normalizers import softmax
from attn_research.errors import ConfigError
from experiments.configs import base
from tests.attention.test_zoo import LENGTHS, B, S, T, _build, _inputs, _np, _score_fn


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _brute_force(p):
  """α `[T, S]` by enumerating every Bernoulli draw z `[T, S]` of the process (t₀ = 0):
  step i takes the first j ≥ t_{i−1} with z_ij = 1; none stops every later step."""
  steps, src_len = p.shape
  alpha = np.zeros_like(p)
  for draw in itertools.product((0, 1), repeat=p.size):
    z = np.array(draw).reshape(p.shape)
    chance = np.prod(np.where(z == 1, p, 1.0 - p))
    if chance == 0.0:
      continue
    t = 0
    for i in range(steps):
      fired = [j for j in range(t, src_len) if z[i, j]]
      if not fired:
        break
      t = fired[0]
      alpha[i, t] += chance
  return alpha


def _double_sum(p, previous):
  """Raffel et al. Eq. 9: α_j = p_j Σ_{k≤j} α_{i−1,k} Π_{l=k}^{j−1} (1 − p_l)."""
  src_len = p.shape[-1]
  return np.array(
    [p[j] * sum(previous[k] * np.prod(1.0 - p[k:j]) for k in range(j + 1)) for j in range(src_len)]
  )


def _one_hot_start(src_len):
  return np.eye(src_len)[0]


# Compiled once per shape (and form): op by op, each of their many small ops compiles alone.
_expected = jax.jit(monotonic.expected_alignment, static_argnums=2)


@functools.partial(jax.jit, static_argnums=3)
def _first_firing_in(table, start, lengths, src_len):
  """`monotonic.first_firing` of the energies `table` `[batch, src_len]`."""
  return monotonic.first_firing(
    lambda index: jnp.take_along_axis(table, index, axis=1), start, lengths, src_len
  )


@pytest.mark.parametrize("form", monotonic.EXPECTATIONS)
def test_expectation_equals_brute_force_over_every_draw(form):
  rng = np.random.default_rng(0)
  for length in (4, 3):  # the second with one padded position (p = 0 there)
    p = rng.uniform(0.05, 0.95, (3, 4))
    p[:, length:] = 0.0
    expected = _brute_force(p)
    alpha = jnp.asarray(_one_hot_start(4), jnp.float32)
    for i in range(3):
      alpha = _expected(jnp.asarray(p[i], jnp.float32), alpha, form)
      np.testing.assert_allclose(alpha, expected[i], atol=2e-6)
    assert np.all(np.asarray(alpha)[length:] == 0.0)
  assert 0.0 < expected.sum(-1).max() <= 1.0  # mass is lost, never renormalised


def _random_step(rng, rows, src_len, low, high):
  p = rng.uniform(low, high, (rows, src_len))
  previous = rng.dirichlet(np.ones(src_len), rows) * rng.uniform(0.2, 1.0, (rows, 1))
  return p, previous, np.array([_double_sum(p[r], previous[r]) for r in range(rows)])


def test_parallel_and_recursive_forms_agree_and_where_parallel_is_inexact():
  rng = np.random.default_rng(1)
  # Where Π (1 − p) stays above the divisor's floor of 1e-10, both forms are exact.
  p, previous, reference = _random_step(rng, 64, 12, 0.1, 0.7)
  for form in monotonic.EXPECTATIONS:
    got = _expected(jnp.asarray(p), jnp.asarray(previous), form)
    np.testing.assert_allclose(got, reference, atol=3e-6)
  # Over 20 positions the product falls below it and the parallel form loses the mass
  # that α_{i−1} holds past that point; the recursive form does not.
  p, previous, reference = _random_step(rng, 64, 20, 0.01, 0.99)
  recursive = _expected(jnp.asarray(p), jnp.asarray(previous), "recursive")
  np.testing.assert_allclose(recursive, reference, atol=3e-6)
  parallel = _expected(jnp.asarray(p), jnp.asarray(previous), "parallel")
  assert np.abs(np.asarray(parallel) - reference).max() > 0.01
  # A p of 1 makes the parallel form's divisor underflow (TF-Addons' documented
  # inexactness): α₂ is 0.25, as the recursion gives, only in the recursive form.
  p = np.array([0.2, 1.0, 0.5, 0.5, 0.5, 0.5])
  previous = np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
  assert _double_sum(p, previous)[2] == 0.25
  recursive = _expected(jnp.asarray(p), jnp.asarray(previous), "recursive")
  parallel = _expected(jnp.asarray(p), jnp.asarray(previous), "parallel")
  np.testing.assert_allclose(recursive, _double_sum(p, previous), atol=1e-7)
  assert float(parallel[2]) < 0.01


@pytest.mark.parametrize("form", monotonic.EXPECTATIONS)
def test_saturated_probabilities_give_the_hard_process(form):
  # The parallel form only where no p = 1 precedes the previous position (there its
  # divisor underflows, the case above); the recursive form everywhere.
  rng = np.random.default_rng(2)
  rows, src_len = 20, 11
  fires = rng.random((6, rows, src_len)) < 0.3
  lengths = rng.integers(1, src_len + 1, rows)
  fires &= np.arange(src_len) < lengths[:, None]
  alpha = jnp.asarray(np.tile(_one_hot_start(src_len), (rows, 1)))
  position = jnp.zeros((rows,), jnp.int32)
  for i in range(6):
    if form == "parallel":
      fires[i] &= np.arange(src_len) >= np.asarray(position)[:, None]
    alpha = _expected(jnp.asarray(fires[i], jnp.float32), alpha, form)
    table = np.where(fires[i], 1.0, -1.0)
    position = _first_firing_in(table, position, lengths, src_len)
    hard = np.eye(src_len + 1)[np.asarray(position)][:, :src_len]  # src_len: stopped
    np.testing.assert_array_equal(alpha, hard)


def test_hard_search_reads_past_its_lookahead_block():
  src_len = 3 * monotonic.LOOKAHEAD + 5
  energies = np.full((4, src_len), -1.0)
  energies[0, 2] = energies[1, 19] = energies[2, src_len - 1] = 1.0  # row 3 never fires
  starts = np.array([0, 3, 7, 0])
  lengths = np.array([src_len, src_len, src_len, src_len])
  found = _first_firing_in(energies, starts, lengths, src_len)
  np.testing.assert_array_equal(found, [2, 19, src_len - 1, src_len])
  # A row that fires only in its padding stops.
  short = _first_firing_in(energies[2:3], starts[2:3], np.array([10]), src_len)
  np.testing.assert_array_equal(short, [src_len])


def _chunk_reference(alpha, u, length, width):
  """Chiu & Raffel's double sum: β_j = Σ_{k=j}^{j+w−1} α_k e^{u_j} / Σ_{l=k−w+1}^{k} e^{u_l}."""
  beta = np.zeros_like(alpha)
  for j in range(length):
    for k in range(j, min(j + width, length)):
      window = range(max(k - width + 1, 0), k + 1)
      top = max(u[m] for m in window)
      beta[j] += alpha[k] * np.exp(u[j] - top) / sum(np.exp(u[m] - top) for m in window)
  return beta


@pytest.mark.parametrize("width", [1, 2, 4])
def test_chunkwise_attention_equals_the_double_sum(width):
  rng = np.random.default_rng(width)
  alpha = rng.dirichlet(np.ones(9), 5) * 0.9
  u = rng.normal(size=(5, 9)) * 3.0
  u[1, 4] = -1e10  # the notebook's stability case
  u[2, 0] = 1e10
  lengths = np.array([9, 6, 9, 1, 3])
  mask = np.arange(9)[None] < lengths[:, None]
  alpha[~mask] = 0.0
  chunkwise = jax.jit(monotonic.chunkwise, static_argnums=(3, 4))  # one program per width
  beta = chunkwise(jnp.asarray(alpha), jnp.asarray(u), mask, width, softmax)
  reference = np.array([_chunk_reference(alpha[r], u[r], lengths[r], width) for r in range(5)])
  np.testing.assert_allclose(beta, reference, atol=1e-6)
  np.testing.assert_allclose(np.asarray(beta).sum(-1), alpha.sum(-1), atol=1e-6)
  assert np.all(np.asarray(beta)[~mask] == 0.0)
  if width == 1:
    np.testing.assert_allclose(beta, alpha, atol=1e-7)


def _apply(module, query, values, mask, hard=False, train=False):
  memory = module.prepare(values, mask)
  state = module.initial_state(memory, hard)
  context, weights, _ = module(query, memory, 0, state, train)
  return context, weights


def _layer_reference(score, alignment, params, query, values, width, hard):
  """Context `[B, T, DIM]` and weights `[B, T, S]` from the papers' formulas."""
  p = params["params"]
  energy = _score_fn(score, p)
  chunk_energy = _score_fn(score, {"score": p.get("chunk_score")}) if alignment == "mocha" else None
  r = float(_np(p, "alignment", "r"))
  weights = np.zeros((B, T, S))
  for b in range(B):
    length = int(LENGTHS[b])
    alpha, position = _one_hot_start(S) * (length > 0), 0
    for t in range(T):
      h = query[b, t]
      e = np.array([energy(h, values[b, j], j + 1)[0] + r for j in range(length)])
      if hard:  # the first j ≥ t_{i−1} with e > 0; none: stopped for good
        fired = [j for j in range(position, length) if e[j] > 0]
        position = fired[0] if fired else S
        alpha = np.eye(S + 1)[position][:S]
      else:
        probs = np.zeros(S)
        probs[:length] = _sigmoid(e)
        alpha = _double_sum(probs, alpha)
      row = alpha
      if alignment == "mocha":
        u = np.full(S, -np.inf)
        u[:length] = [chunk_energy(h, values[b, j], j + 1)[0] for j in range(length)]
        row = _chunk_reference(alpha, u, length, width)
      weights[b, t] = row
  return np.einsum("bts,bsd->btd", weights, values), weights


@pytest.mark.parametrize(
  "score,alignment,hard",
  [
    (score, alignment, hard)
    for score in ("normed_additive", "additive", "concat", "general", "scaled_general")
    for alignment in ("monotonic", "mocha")
    for hard in (False, True)
  ],
)
def test_layer_matches_the_papers_formulas(score, alignment, hard):
  query, values, mask = _inputs()
  # Energies around 0 so that the hard process both stops and moves on.
  layer = _build(score, alignment, energy_bias=0.3, chunk=3, init="default")
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  context, weights = layer.apply(params, *args, hard, method=_apply)
  ref_context, ref_weights = _layer_reference(score, alignment, params, query, values, 3, hard)
  np.testing.assert_allclose(weights, ref_weights, atol=3e-6)
  np.testing.assert_allclose(context, ref_context, atol=3e-5)
  assert np.all(np.asarray(weights)[~np.broadcast_to(mask[:, None], weights.shape)] == 0.0)
  if hard:
    chosen = ref_weights.sum(-1) > 0
    assert chosen.any() and (~chosen[LENGTHS > 0]).any()  # some steps attend, some stopped
  # One step at a time, carrying the state, gives the same.
  memory = layer.apply(params, args[1], mask, method="prepare")
  state = layer.apply(params, memory, hard, method="initial_state")
  for t in range(T):
    step = jnp.asarray(query[:, t], jnp.float32)  # sliced on the host: no program per t
    c_t, a_t, state = layer.apply(params, step, memory, t, state)
    np.testing.assert_allclose(a_t, weights[:, t], atol=1e-6)
    np.testing.assert_allclose(c_t, context[:, t], atol=1e-5)


@pytest.mark.parametrize("alignment", ["monotonic", "mocha"])
def test_a_process_that_never_fires_attends_to_nothing(alignment):
  # Every row stops at once, the full-length one too: a MoChA chunk ending past the
  # source must not reach back into it.
  query, values, mask = _inputs()
  layer = _build("normed_additive", alignment, energy_bias=-50.0, chunk=3)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  context, weights = layer.apply(params, *args, True, method=_apply)
  assert np.all(np.asarray(weights) == 0.0) and np.all(np.asarray(context) == 0.0)


@pytest.mark.parametrize("alignment", ["monotonic", "mocha"])
@pytest.mark.parametrize("form", monotonic.EXPECTATIONS)
def test_gradients_are_finite_with_padding_and_saturated_energies(alignment, form):
  query, values, mask = _inputs()
  layer = _build("normed_additive", alignment, expectation=form, init="default")
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  # g = 60 saturates σ: p within float32 rounding of 0 and 1.
  params["params"]["score"]["g"] = jnp.asarray(60.0)

  def loss(params, q, v):
    c, w = layer.apply(
      params, q, v, mask, False, True, method=_apply, rngs={"dropout": jax.random.key(3)}
    )
    return jnp.sum(c**2) + jnp.sum(w * jnp.arange(S))

  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, args[0], args[1])
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert np.all(np.asarray(grads[2])[~mask] == 0.0)
  assert np.abs(np.asarray(grads[0]["params"]["alignment"]["r"])) > 0


def test_noise_only_while_training():
  query, values, mask = _inputs()
  layer = _build("normed_additive", "monotonic", sigmoid_noise=1.0)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  clean = layer.apply(params, *args, method=_apply)[1]

  def noisy(seed):
    return layer.apply(
      params, *args, False, True, method=_apply, rngs={"dropout": jax.random.key(seed)}
    )[1]

  assert not np.allclose(noisy(0), clean) and not np.allclose(noisy(0), noisy(1))
  silent = _build("normed_additive", "monotonic", sigmoid_noise=0.0)
  quiet = silent.apply(
    params, *args, False, True, method=_apply, rngs={"dropout": jax.random.key(0)}
  )
  np.testing.assert_array_equal(quiet[1], clean)


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("heads", 2, r"heads=2.*set model\.attention\.heads=1"),
    ("coverage", "see", r"coverage='see'.*set model\.attention\.coverage='none'"),
    ("normalizer", "sparsemax", r"normalizer='sparsemax'.*normalizer='softmax'"),
  ],
)
def test_monotonic_refuses_what_it_cannot_combine(key, value, message):
  config = base.get_config().model.attention
  config.score, config.alignment = "normed_additive", "monotonic"
  config[key] = value
  with pytest.raises(ConfigError, match=message):
    AttentionConfig.from_config(config, 40)
  if key == "normalizer":  # MoChA normalises its chunk with it
    config.alignment = "mocha"
    assert AttentionConfig.from_config(config, 40).normalizer == "sparsemax"


def test_default_expectation_keeps_the_mass_far_into_the_source():
  """p = σ(−1) (the default energy bias, no content) and α_{i−1} one-hot at position 80 of
  120: Π(1 − p) before it is 0.73⁸⁰ ≈ 1.3e-11, under the parallel form's divisor floor."""
  p = np.full(120, 1.0 / (1.0 + np.e))
  previous = np.eye(120)[80]
  exact = _double_sum(p, previous)  # all of it stays: Σ p (1 − p)^k over 40 positions
  np.testing.assert_allclose(exact.sum(), 1.0 - (1.0 - p[0]) ** 40, rtol=1e-12)
  kept = {
    form: np.asarray(_expected(jnp.asarray(p), jnp.asarray(previous), form))
    for form in monotonic.EXPECTATIONS
  }
  np.testing.assert_allclose(kept["recursive"], exact, atol=1e-6)
  assert abs(kept["recursive"].sum() - 1.0) < 1e-5
  # The parallel form scales it by Π(1 − p) / 1e-10: 0.131 of the mass survives.
  np.testing.assert_allclose(kept["parallel"], exact * (1.0 - p[0]) ** 80 / 1e-10, rtol=2e-3)
  assert 0.12 < kept["parallel"].sum() < 0.14
  assert base.get_config().model.attention.expectation == "recursive"
