"""Coverage models against float64 NumPy written from Tu et al. 2016 and See et al. 2017:
several decoder steps, each score reading the previous coverage inside its tanh."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attn_research.attention import Attention, AttentionConfig, alignments
from attn_research.attention.coverage import COVERAGES, MAX_FERTILITY
from attn_research.errors import ConfigError
from tests.attention.test_zoo import (
  DIM,
  LENGTHS,
  STATELESS,
  B,
  D,
  S,
  T,
  _inputs,
  _np,
  _softmax,
)
from tests.attention.test_zoo import _build as zoo_build

UNITS = 3  # tu_nn's coverage size here


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _build(score, alignment, coverage):
  return zoo_build(score, alignment, coverage=coverage, coverage_size=UNITS)


def _run(module, queries, values, mask):
  """Every step in turn: contexts `[B, T, DIM]`, weights `[B, T, S]`, final coverage."""
  memory = module.prepare(values, mask)
  state = module.initial_state(memory)
  contexts, weights = [], []
  for t in range(queries.shape[1]):
    context, a_t, state = module(queries[:, t], memory, jnp.full((B,), t), state)
    contexts.append(context)
    weights.append(a_t)
  return jnp.stack(contexts, 1), jnp.stack(weights, 1), state.coverage


def _energy(score, p, h, k, c):
  """`v_aᵀ tanh(… + V_c C_j)` of each score that accepts coverage."""
  sp = p["score"]
  w_c = _np(sp, "w_c", "kernel").T
  if score == "concat":
    inner = _np(sp, "w_q", "kernel").T @ h + _np(sp, "w_k", "kernel").T @ k
    return _np(sp, "v_a") @ np.tanh(inner + w_c @ c)
  if score == "additive":
    inner = _np(sp, "w_a", "kernel").T @ h + _np(sp, "u_a", "kernel").T @ k
    return _np(sp, "v_a") @ np.tanh(inner + w_c @ c)
  v, g = _np(sp, "v"), float(_np(sp, "g"))  # normed_additive
  inner = _np(sp, "w_a", "kernel").T @ h + _np(sp, "u_a", "kernel").T @ k + _np(sp, "b")
  return (g * v / np.linalg.norm(v)) @ np.tanh(inner + w_c @ c)


def _update(coverage, p, c, a, k, q):
  """C_{t,j} from C_{t−1,j} = c, a_{t,j} = a, the source state k and the query q."""
  if coverage == "see":
    return c + a
  cp = p["coverage"]
  if coverage == "tu_linguistic":
    fertility = MAX_FERTILITY * _sigmoid(_np(cp, "u_f", "kernel").T @ k)
    return c + a / fertility
  w_h, b_h = _np(cp, "w_h", "kernel").T, _np(cp, "w_h", "bias")
  x = w_h @ k + b_h + _np(cp, "w_a", "kernel").T @ [a] + _np(cp, "w_q", "kernel").T @ q
  u = _np(cp, "u", "kernel").T @ c
  (x_r, x_z, x_n), (u_r, u_z, u_n) = np.split(x, 3), np.split(u, 3)
  r, z = _sigmoid(x_r + u_r), _sigmoid(x_z + u_z)
  return (1 - z) * np.tanh(x_n + r * u_n) + z * c


def _reference(score, alignment, coverage, params, query, values):
  p = params["params"]
  units = UNITS if coverage == "tu_nn" else 1
  weights = np.zeros((B, T, S))
  cover = np.zeros((B, S, units))
  for b in range(B):
    length = int(LENGTHS[b])
    for t in range(T):
      h = query[b, t]
      if alignment == "global":
        window = list(range(1, length + 1))
      elif alignment == "local_m":
        window = [s for s in range(t + 1 - D, t + 2 + D) if 1 <= s <= length]
      else:
        w_p, v_p = _np(p["alignment"], "w_p", "kernel").T, _np(p["alignment"], "v_p")
        p_t = length / (1.0 + np.exp(-(v_p @ np.tanh(w_p @ h))))
        window = [s for s in range(1, length + 1) if abs(s - p_t) <= D]
      if window:
        e = np.array([_energy(score, p, h, values[b, s - 1], cover[b, s - 1]) for s in window])
        align = _softmax(e)
        if alignment == "local_p":
          align = align * np.exp(-((np.array(window) - p_t) ** 2) / (2 * (D / 2) ** 2))
        weights[b, t, np.array(window) - 1] = align
      for j in range(length):  # padding keeps C = 0
        cover[b, j] = _update(coverage, p, cover[b, j], weights[b, t, j], values[b, j], h)
  return np.einsum("bts,bsd->btd", weights, values), weights, cover


@pytest.mark.parametrize(
  "coverage,score,alignment",
  [
    (coverage, score, alignment)
    for coverage, score, alignment in itertools.product(
      COVERAGES.names(), ("concat", "additive", "normed_additive"), STATELESS
    )
    # every coverage in every alignment, every score under global and one more
    if alignment == "global" or score == "additive" or (coverage, score) == ("see", "concat")
  ],
)
def test_coverage_matches_numpy_step_by_step(coverage, score, alignment, monkeypatch):
  monkeypatch.setattr(alignments, "gathers_window", lambda src_len, w: alignment == "local_m")
  query, values, mask = _inputs(7)
  layer = _build(score, alignment, coverage)
  q, v = jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32)
  params = layer.init(jax.random.key(1), q, v, mask, method=_run)
  rng = np.random.default_rng(8)
  # Paper initialisations start some weights at 0 or 1e-3; larger ones test the formulas.
  params = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape) * 0.5, x.dtype), params)
  context, weights, final = layer.apply(params, q, v, mask, method=_run)
  ref_context, ref_weights, ref_cover = _reference(
    score, alignment, coverage, params, query, values
  )
  np.testing.assert_allclose(weights, ref_weights, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(context, ref_context, atol=5e-5, rtol=1e-5)
  np.testing.assert_allclose(final, ref_cover, atol=1e-5, rtol=1e-5)
  assert np.all(np.asarray(final)[~mask] == 0.0)  # padding is never covered
  if coverage == "see":  # See's coverage is the attention received so far
    np.testing.assert_allclose(final[..., 0], np.asarray(weights).sum(1), atol=1e-6)

  # Coverage changes the weights: the same layer with C held at 0 attends differently.
  zero = jax.tree.map(jnp.zeros_like, params["params"]["score"]["w_c"])
  held = {"params": {**params["params"], "score": {**params["params"]["score"], "w_c": zero}}}
  _, uncovered, _ = layer.apply(held, q, v, mask, method=_run)
  assert np.abs(np.asarray(uncovered)[:, 1:] - np.asarray(weights)[:, 1:]).max() > 1e-3
  np.testing.assert_allclose(uncovered[:, 0], weights[:, 0], atol=1e-6)  # C₀ = 0

  # Gradients through the coverage recursion against central differences.
  r = rng.normal(size=ref_context.shape)

  def loss(q):
    return jnp.sum(layer.apply(params, q, v, mask, method=_run)[0] * r)

  grad = np.asarray(jax.grad(loss)(q))
  eps = 1e-5
  for b, t, i in ((0, 0, 0), (0, 2, 3), (1, 1, 5), (4, 0, 2)):
    shift = np.zeros_like(query)
    shift[b, t, i] = eps
    up, down = (
      (_reference(score, alignment, coverage, params, query + d, values)[0] * r).sum()
      for d in (shift, -shift)
    )
    np.testing.assert_allclose(grad[b, t, i], (up - down) / (2 * eps), atol=2e-3, rtol=2e-3)


def test_fertility_is_n_over_two_at_zero_and_coverage_starts_at_zero():
  _, values, mask = _inputs()
  layer = _build("additive", "global", "tu_linguistic")
  v = jnp.asarray(values, jnp.float32)
  params = layer.init(jax.random.key(0), jnp.zeros((B, T, DIM)), v, mask, method=_run)
  zero = jax.tree.map(jnp.zeros_like, params)
  memory = layer.apply(zero, v, mask, method=Attention.prepare)
  # 1/Φ with Φ = N σ(0) = N / 2 on real positions, 0 on padding.
  np.testing.assert_allclose(memory.coverage[..., 0], np.where(mask, 2 / MAX_FERTILITY, 0.0))
  state = layer.apply(zero, memory, method=Attention.initial_state)
  assert state.alignment is None and np.all(np.asarray(state.coverage) == 0)


@pytest.mark.parametrize("score", ["dot", "general", "mul", "location", "cosine"])
def test_coverage_needs_a_score_with_a_tanh_layer(score):
  config = dict(score=score, alignment="global", coverage="see")
  with pytest.raises(ConfigError, match=r"concat, additive, normed_additive or coverage='none'"):
    AttentionConfig.from_config(ml_collections.ConfigDict(config), 10)
