"""Every score × alignment against float64 NumPy written from the papers' formulas.

Luong et al. 2015 Eqs. 7–10 (global, local-m, local-p; dot, general, concat, location),
Bahdanau et al. 2015 (additive), tensorflow/nmt (scaled Luong, normed Bahdanau), Britz
et al. 2017 (Mul-N), Graves et al. 2014 (cosine), Vaswani et al. 2017 (scaled dot).
Positions in the formulas are 1-based (s = 1..S), as in the paper.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention import ALIGNMENTS, SCORES, Attention, AttentionConfig, alignments
from attn_research.errors import ConfigError
from experiments.configs import base
from tests.attention.test_normalizers import _reference as normalizers_reference

B, S, T, DIM, N, D = 5, 9, 6, 6, 5, 2
LENGTHS = np.array([9, 5, 1, 0, 3])  # row 3 is an empty source
MAX_LEN = 12
# The alignments over a softmax (or another normaliser) of every step's energies; the
# monotonic ones, which carry a state between steps, have their own tests.
STATELESS = [a for a in ALIGNMENTS.names() if not getattr(ALIGNMENTS.get(a), "stateful", False)]


def _inputs(seed=0, lengths=LENGTHS, steps=T, dim=DIM):
  """Queries `[batch, steps, dim]`, states `[batch, src_len, dim]` (`max(lengths)` long,
  huge on padding) and their mask, for one source length per row."""
  rng = np.random.default_rng(seed)
  batch, src_len = len(lengths), int(max(lengths))
  query = rng.normal(size=(batch, steps, dim))
  values = rng.normal(size=(batch, src_len, dim))
  mask = np.arange(src_len)[None, :] < np.asarray(lengths)[:, None]
  values[~mask] = 100.0 * rng.normal(size=values[~mask].shape)  # padding must not leak
  return query, values, mask


def _apply(module, query, values, mask, positions):
  context, weights, _ = module(query, module.prepare(values, mask), positions)
  return context, weights


def _build(score, alignment, sigma=0.0, normalizer="softmax", alpha=1.5, size=N, **fields):
  """The layer of the tests' sizes; `fields` are more `AttentionConfig` fields."""
  config = AttentionConfig(
    score,
    alignment,
    window=D,
    size=size,
    max_source_length=MAX_LEN,
    sigma=sigma,
    normalizer=normalizer,
    entmax_alpha=alpha,
    **fields,
  )
  return Attention(config, query_size=DIM)


def _np(params, *path):
  x = params
  for key in path:
    x = x[key]
  return np.asarray(x, np.float64)


def _score_fn(name, p, heads=1):
  """score(h, k, s) → `[heads]` energies for one query h [DIM] and one key k [DIM] at
  1-based position s: head i compares chunk i of the compared vectors."""
  sp = p.get("score", {})

  def chunks(x):
    return np.split(x, heads)

  def dots(a, b):
    return np.array([x @ y for x, y in zip(chunks(a), chunks(b), strict=True)])

  def tanh_layer(v, inner):
    return np.array([u @ np.tanh(x) for u, x in zip(chunks(v), chunks(inner), strict=True)])

  if name == "dot":
    return lambda h, k, s: dots(h, k)
  if name == "scaled_dot":
    return lambda h, k, s: dots(h, k) / np.sqrt(DIM / heads)
  if name in ("general", "scaled_general"):
    w_a = _np(sp, "w_a", "kernel").T  # [query, key]
    g = float(_np(sp, "g")) if name == "scaled_general" else 1.0
    return lambda h, k, s: g * dots(h, w_a @ k)
  if name == "concat":
    w_a = np.concatenate([_np(sp, "w_q", "kernel").T, _np(sp, "w_k", "kernel").T], axis=1)
    v_a = _np(sp, "v_a")
    return lambda h, k, s: tanh_layer(v_a, w_a @ np.concatenate([h, k]))
  if name == "additive":
    w_a, u_a, v_a = _np(sp, "w_a", "kernel").T, _np(sp, "u_a", "kernel").T, _np(sp, "v_a")
    return lambda h, k, s: tanh_layer(v_a, w_a @ h + u_a @ k)
  if name == "normed_additive":
    w, u, v = _np(sp, "w_a", "kernel").T, _np(sp, "u_a", "kernel").T, _np(sp, "v")
    g, b = float(_np(sp, "g")), _np(sp, "b")
    return lambda h, k, s: tanh_layer(g * v / np.linalg.norm(v), w @ h + u @ k + b)
  if name == "mul":
    w_q, w_k = _np(sp, "w_q", "kernel").T, _np(sp, "w_k", "kernel").T
    return lambda h, k, s: dots(w_q @ h, w_k @ k)
  if name == "cosine":  # of each head's chunks
    unit = lambda x: np.concatenate([c / np.linalg.norm(c) for c in chunks(x)])  # noqa: E731
    return lambda h, k, s: dots(unit(h), unit(k))
  if name == "location":
    w_a = _np(sp, "w_a").T  # [max_len, query]: row s scores position s
    return lambda h, k, s: dots(h, w_a[s - 1])
  raise AssertionError(name)


def _softmax(e):
  return np.exp(e - e.max()) / np.exp(e - e.max()).sum()


def _reference(
  score, alignment, params, query, values, mask, sigma=D / 2, normalize=_softmax, heads=1
):
  """Context `[B, T, DIM]` (the heads' contexts over their chunks of the values,
  concatenated) and the heads' mean weights `[B, T, S]`."""
  p = params.get("params", {})
  f = _score_fn(score, p, heads)
  weights = np.zeros((B, T, heads, S))
  for b, t in itertools.product(range(B), range(T)):
    length, h = int(LENGTHS[b]), query[b, t]
    if alignment == "global":
      window = list(range(1, length + 1))
    elif alignment == "local_m":  # p_t = t (1-based t + 1), window [p_t − D, p_t + D]
      window = [s for s in range(t + 1 - D, t + 2 + D) if 1 <= s <= length]
    else:  # local_p
      w_p, v_p = _np(p["alignment"], "w_p", "kernel").T, _np(p["alignment"], "v_p")
      p_t = length / (1.0 + np.exp(-(v_p @ np.tanh(w_p @ h))))
      window = [s for s in range(1, length + 1) if abs(s - p_t) <= D]
    if not window:
      continue
    e = np.array([f(h, values[b, s - 1], s) for s in window])  # [window, heads]
    for head in range(heads):
      align = normalize(e[:, head])
      if alignment == "local_p":
        align = align * np.exp(-((np.array(window) - p_t) ** 2) / (2 * sigma**2))
      weights[b, t, head, np.array(window) - 1] = align
  chunked = values.reshape(B, S, heads, DIM // heads)
  context = np.einsum("bths,bshd->bthd", weights, chunked).reshape(B, T, DIM)
  return context, weights.mean(axis=2)


@pytest.mark.parametrize(
  "score,alignment,path",
  [
    (score, alignment, path)
    for score, alignment in itertools.product(SCORES.names(), STATELESS)
    for path in (("",) if alignment == "global" else ("gather", "dense"))
  ],
)
def test_matches_numpy_formula(score, alignment, path, monkeypatch):
  # Local alignments gather their window on long sources and score a masked dense row on
  # short ones; both must match the reference.
  if path:
    monkeypatch.setattr(alignments, "gathers_window", lambda src_len, window: path == "gather")
  query, values, mask = _inputs()
  positions = np.broadcast_to(np.arange(T), (B, T))
  layer = _build(score, alignment)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, positions)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  if score == "additive":  # v_a starts at 0 (Bahdanau); give it values to test the form
    params["params"]["score"]["v_a"] = jax.random.normal(jax.random.key(2), (N,))
  context, weights = layer.apply(params, *args, method=_apply)
  ref_context, ref_weights = _reference(score, alignment, params, query, values, mask)
  np.testing.assert_allclose(weights, ref_weights, atol=3e-6, rtol=1e-5)
  np.testing.assert_allclose(context, ref_context, atol=3e-5, rtol=1e-5)
  weights = np.asarray(weights)
  assert np.all(weights[ref_weights == 0] == 0.0)  # padding / outside the window: exactly 0
  assert np.all(np.asarray(context)[LENGTHS == 0] == 0.0)
  if alignment != "local_p":  # local-p multiplies by a Gaussian after the softmax (Eq. 10)
    # 1 wherever the window meets the sentence (local-m at t > S + D attends to nothing).
    reached = ref_weights.sum(-1) > 0
    assert reached[LENGTHS > 0].mean() > 0.8
    np.testing.assert_allclose(weights.sum(-1)[reached], 1.0, atol=1e-6)
    assert np.all(weights.sum(-1)[~reached] == 0.0)

  # Step by step (a decoder's view) gives the same as all target steps at once.
  for t in (0, T - 1):
    c_t, a_t = layer.apply(params, args[0][:, t], args[1], mask, positions[:, t], method=_apply)
    np.testing.assert_allclose(a_t, weights[:, t], atol=1e-6)
    np.testing.assert_allclose(c_t, context[:, t], atol=1e-5)

  # Gradients with respect to parameters, queries and values are finite everywhere.
  def loss(params, q, v):
    c, w = layer.apply(params, q, v, mask, positions, method=_apply)
    return jnp.sum(c**2) + jnp.sum(w * jnp.arange(S))

  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, args[0], args[1])
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(leaf)))
  assert np.all(np.asarray(grads[2])[~mask] == 0.0)  # nothing flows into padding


@pytest.mark.parametrize("path", ["gather", "dense"])
def test_local_p_gaussian_width_follows_sigma(path, monkeypatch):
  """`model.attention.sigma` replaces Luong's σ = D/2 in Eq. 10 (here 1 by default)."""
  monkeypatch.setattr(alignments, "gathers_window", lambda src_len, window: path == "gather")
  query, values, mask = _inputs()
  positions = np.broadcast_to(np.arange(T), (B, T))
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, positions)
  for sigma in (0.7, 4.0):
    layer = _build("general", "local_p", sigma=sigma)
    params = layer.init(jax.random.key(1), *args, method=_apply)
    context, weights = layer.apply(params, *args, method=_apply)
    ref_context, ref_weights = _reference("general", "local_p", params, query, values, mask, sigma)
    np.testing.assert_allclose(weights, ref_weights, atol=3e-6, rtol=1e-5)
    np.testing.assert_allclose(context, ref_context, atol=3e-5, rtol=1e-5)
  default = _build("general", "local_p").apply(params, *args, method=_apply)[1]
  assert not np.allclose(default, weights)


def test_local_p_needs_a_gaussian_of_some_width():
  config = base.get_config().model.attention
  config.alignment, config.window = "local_p", 0
  with pytest.raises(ConfigError, match="window=0 and sigma=0 has a Gaussian of width 0"):
    AttentionConfig.from_config(config, longest_source=40)
  config.sigma = 1.0
  assert AttentionConfig.from_config(config, longest_source=40).sigma == 1.0


def test_local_p_window_and_gaussian_at_the_sentence_edges():
  """p_t forced to 0, S and a fractional point: the window is the real interval
  [p_t − D, p_t + D] cut at 1 and S, and the Gaussian is exp(−(s − p_t)²/2σ²), σ = D/2."""
  query, values, mask = _inputs()
  query[:, :, 0] = 10.0  # tanh(W_p h) ≈ 1 for W_p reading only the first component
  layer = _build("dot", "local_p")
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, 0)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  kernel = np.zeros((DIM, N), np.float32)
  kernel[0] = 1.0
  params["params"]["alignment"]["w_p"]["kernel"] = jnp.asarray(kernel)
  b = 0  # length 9
  for v_p, p_t in ((-20.0, 0.0), (20.0, 9.0), (np.log(0.37 / 0.63) / N, 9 * 0.37)):
    params["params"]["alignment"]["v_p"] = jnp.full((N,), v_p, jnp.float32)
    _, weights = layer.apply(params, *args, method=_apply)
    row = np.asarray(weights)[b, 0]
    s = np.arange(1, S + 1)
    inside = (np.abs(s - p_t) <= D + 1e-4) & (s <= LENGTHS[b])
    assert np.all(row[~inside] == 0.0) and np.all(row[inside] > 0.0), (p_t, row)
    e = query[b, 0] @ values[b, inside].T
    align = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    gauss = np.exp(-((s[inside] - p_t) ** 2) / (2 * (D / 2) ** 2))
    np.testing.assert_allclose(row[inside], align * gauss, rtol=1e-4, atol=1e-6)
  # At p_t = S the last word sits at the Gaussian's peak and the window has D + 1 words.
  params["params"]["alignment"]["v_p"] = jnp.full((N,), 20.0, jnp.float32)
  _, weights = layer.apply(params, *args, method=_apply)
  assert np.count_nonzero(np.asarray(weights)[b, 0]) == D + 1


@pytest.mark.parametrize(
  "score,alignment", [("general", "global"), ("concat", "local_p"), ("location", "local_m")]
)
def test_bfloat16_and_vmap(score, alignment):
  query, values, mask = _inputs()
  layer = _build(score, alignment)
  args32 = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, 1)
  # Compiled whole: op by op, these layers' programs are found in no other test.
  params = jax.jit(functools.partial(layer.init, method=_apply))(jax.random.key(1), *args32)
  context32, weights32 = jax.jit(functools.partial(layer.apply, method=_apply))(params, *args32)

  def bfloat16(x):  # rounded on the host, to nearest even as XLA's convert
    return jnp.asarray(np.asarray(x).astype(jnp.bfloat16))

  bf = jax.tree.map(bfloat16, params)
  args16 = (bfloat16(args32[0]), bfloat16(args32[1]), mask, 1)
  context16, weights16 = jax.jit(lambda p, q, v: layer.apply(p, q, v, mask, 1, method=_apply))(
    bf, args16[0], args16[1]
  )
  assert context16.dtype == jnp.bfloat16 and weights16.dtype == jnp.bfloat16
  w16 = np.asarray(weights16, np.float32)
  assert np.all(np.isfinite(w16)) and np.all(w16[np.asarray(weights32) == 0] == 0.0)
  np.testing.assert_allclose(w16, weights32, atol=0.05)
  np.testing.assert_allclose(np.asarray(context16, np.float32), context32, atol=0.5, rtol=0.05)

  # vmap over an extra leading axis equals applying to each slice.
  stacked = jnp.asarray(np.stack([query, query[::-1]]), jnp.float32)
  vmapped = jax.jit(
    jax.vmap(lambda q: layer.apply(params, q, args32[1], mask, 1, method=_apply)[1])
  )(stacked)
  np.testing.assert_allclose(np.asarray(vmapped)[0], weights32, atol=1e-6)


def test_location_refuses_sources_longer_than_its_reach():
  query, values, mask = _inputs()
  layer = Attention(AttentionConfig("location", "global", max_source_length=S - 1), DIM)
  with pytest.raises(ValueError, match=r"max_source_length"):
    layer.init(jax.random.key(0), jnp.asarray(query), jnp.asarray(values), mask, 0, method=_apply)


def test_dot_score_names_the_fix_for_mismatched_sizes():
  _, values, mask = _inputs()
  layer = Attention(AttentionConfig("dot", "global"), query_size=DIM + 1)
  with pytest.raises(ValueError, match=r"model\.attention\.score=general"):
    layer.init(
      jax.random.key(0), jnp.ones((B, DIM + 1)), jnp.asarray(values), mask, 0, method=_apply
    )


def test_local_alignments_gather_only_on_sources_longer_than_two_windows():
  assert not alignments.gathers_window(42, 10) and alignments.gathers_window(43, 10)


@pytest.mark.parametrize(
  "normalizer,alpha,alignment,path",
  [
    (normalizer, alpha, alignment, path)
    for normalizer, alpha in (("sparsemax", 2.0), ("entmax15", 1.5), ("entmax", 1.3))
    for alignment in STATELESS
    for path in (("",) if alignment == "global" else ("gather", "dense"))
  ],
)
def test_sparse_normalizers_match_numpy_in_every_alignment(
  normalizer, alpha, alignment, path, monkeypatch
):
  if path:
    monkeypatch.setattr(alignments, "gathers_window", lambda src_len, window: path == "gather")
  normalize = functools.partial(normalizers_reference, normalizer, alpha=alpha)
  query, values, mask = _inputs(3)
  query *= 3.0  # sharper energies: supports smaller than the window
  positions = np.broadcast_to(np.arange(T), (B, T))
  layer = _build("general", alignment, normalizer=normalizer, alpha=alpha)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, positions)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  context, weights = layer.apply(params, *args, method=_apply)
  ref_context, ref_weights = _reference(
    "general", alignment, params, query, values, mask, normalize=normalize
  )
  np.testing.assert_allclose(weights, ref_weights, atol=2e-5)
  np.testing.assert_allclose(context, ref_context, atol=1e-4)
  weights = np.asarray(weights)
  assert np.all(weights[ref_weights == 0] == 0.0)  # outside the support: exactly 0
  assert (ref_weights[LENGTHS > 2] == 0).sum() > (~mask[LENGTHS > 2]).sum() * T  # sparse

  # d/dquery of Σ r·c against central differences of the float64 reference.
  r = np.random.default_rng(4).normal(size=context.shape)

  def loss(q):
    c, _ = layer.apply(params, q, args[1], mask, positions, method=_apply)
    return jnp.sum(c * r)

  grad = np.asarray(jax.grad(loss)(args[0]))
  eps = 1e-5
  for b, t, i in ((0, 0, 0), (0, 3, 2), (1, 2, 5), (4, 5, 1)):
    shift = np.zeros_like(query)
    shift[b, t, i] = eps
    up, down = (
      (
        _reference("general", alignment, params, query + d, values, mask, normalize=normalize)[0]
        * r
      ).sum()
      for d in (shift, -shift)
    )
    np.testing.assert_allclose(grad[b, t, i], (up - down) / (2 * eps), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize(
  "score,alignment,heads",
  [
    (score, alignment, heads)
    for score, alignment in itertools.product(SCORES.names(), STATELESS)
    for heads in (2, 3)
    if heads == 2 or alignment == "global"
  ],
)
def test_multi_head_matches_numpy_formula(score, alignment, heads, monkeypatch):
  # local-m gathers its window, local-p scores the masked dense row: both paths per head.
  monkeypatch.setattr(alignments, "gathers_window", lambda src_len, w: alignment == "local_m")
  query, values, mask = _inputs(5)
  positions = np.broadcast_to(np.arange(T), (B, T))
  layer = _build(score, alignment, heads=heads, size=2 * heads)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask, positions)
  params = layer.init(jax.random.key(1), *args, method=_apply)
  if score == "additive":
    params["params"]["score"]["v_a"] = jax.random.normal(jax.random.key(2), (2 * heads,))
  context, weights = layer.apply(params, *args, method=_apply)
  ref_context, ref_weights = _reference(score, alignment, params, query, values, mask, heads=heads)
  np.testing.assert_allclose(weights, ref_weights, atol=3e-6, rtol=1e-5)
  np.testing.assert_allclose(context, ref_context, atol=3e-5, rtol=1e-5)
  assert context.shape == (B, T, DIM)  # the heads' contexts concatenated
  assert np.all(np.asarray(weights)[ref_weights == 0] == 0.0)
  if alignment == "global":  # the heads' mean is a distribution over the real positions
    np.testing.assert_allclose(np.asarray(weights).sum(-1)[LENGTHS > 0], 1.0, atol=1e-6)

  # Each head has its own distribution: the heads differ, and their mean is the weights.
  def energies(module, q, v):
    return module.score_fn.compare(q, module.score_fn.prepare(v))

  per_head = layer.apply(params, args[0], args[1], method=energies)
  assert per_head.shape == (B, T, heads, S)
  assert np.abs(np.diff(np.asarray(per_head), axis=2)).max() > 1e-3

  def loss(q):
    c, _ = layer.apply(params, q, args[1], mask, positions, method=_apply)
    return jnp.sum(c * np.arange(DIM))

  grad = np.asarray(jax.grad(loss)(args[0]))
  eps = 1e-5
  for b, t, i in ((0, 0, 0), (0, 3, 2), (4, 5, 1)):
    shift = np.zeros_like(query)
    shift[b, t, i] = eps
    up, down = (
      (_reference(score, alignment, params, query + d, values, mask, heads=heads)[0])
      @ np.arange(DIM)
      for d in (shift, -shift)
    )
    np.testing.assert_allclose(
      grad[b, t, i], (up.sum() - down.sum()) / (2 * eps), atol=2e-3, rtol=2e-3
    )


def test_heads_must_divide_the_sizes_they_split():
  with pytest.raises(ConfigError, match=r"heads=4 must divide model\.encoder\.hidden_size \(6\)"):
    AttentionConfig("general", "global", heads=4).validate(6)
  with pytest.raises(ConfigError, match=r"heads=2 must divide the inner size \(5\)"):
    AttentionConfig("concat", "global", heads=2, size=5).validate(6)
  AttentionConfig("concat", "global", heads=3, size=6).validate(6)
