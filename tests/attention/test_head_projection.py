"""`model.attention.head_projection` against float64 NumPy written from Sockeye 1.x's
`MultiHeadDotAttention` (`rnn_attention.py`, `mhdot`):

  [K; V] = W_s h̄ + b_s,   q' = W_q q + b_q,   e_h(s) = q'_h · K_h(s) / √(d/H),
  a_h = softmax over the real positions,   c = W_o [Σ_s a_1(s) V_1(s); …] + b_o,

with q'_h, K_h, V_h the h-th chunk of d/H dimensions; the weights reported are the heads'
mean.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention import Attention, AttentionConfig
from attn_research.config import fields
from attn_research.errors import ConfigError
from tests.attention import test_zoo

B, S, T, DIM = 4, 7, 3, 8
LENGTHS = np.array([7, 4, 1, 0])  # row 3 is an empty source
PROJECTIONS = ("source_projection", "query_projection", "output_projection")


def _inputs(seed=0):
  return test_zoo._inputs(seed, LENGTHS, T, DIM)


def _apply(module, query, values, mask, positions=0):
  context, weights, _ = module(query, module.prepare(values, mask), positions)
  return context, weights


def _init(config, query, values, mask, seed=1):
  """The layer and its params, the projections' biases made nonzero to test them."""
  layer = Attention(config, query_size=DIM)
  args = (jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32), mask)
  params = layer.init(jax.random.key(seed), *args, method=_apply)
  if config.head_projection:
    for i, name in enumerate(PROJECTIONS):
      bias = params["params"][name]["bias"]
      params["params"][name]["bias"] = jax.random.normal(jax.random.key(10 + i), bias.shape)
  return layer, params, args


def _dense(params, name):
  """`x ↦ W x + b` of the Dense `name`, in float64."""
  kernel = np.asarray(params["params"][name]["kernel"], np.float64)
  bias = np.asarray(params["params"][name]["bias"], np.float64)
  return lambda x: x @ kernel + bias


def _reference(params, query, values, heads):
  """Sockeye's mhdot with a scaled dot score: context `[B, T, DIM]` and the heads' mean
  weights `[B, T, S]`."""
  hidden = _dense(params, "source_projection")(values)  # [B, S, 2·DIM]
  keys, vals = hidden[..., :DIM], hidden[..., DIM:]
  projected = _dense(params, "query_projection")(query)  # [B, T, DIM]
  per_head = DIM // heads
  weights = np.zeros((B, T, heads, S))
  context = np.zeros((B, T, DIM))
  for b in range(B):
    length = LENGTHS[b]
    for t in range(T):
      chunks = []
      for h in range(heads):
        part = slice(h * per_head, (h + 1) * per_head)
        if length:
          e = keys[b, :length, part] @ projected[b, t, part] / np.sqrt(per_head)
          a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
          weights[b, t, h, :length] = a
        chunks.append(weights[b, t, h] @ vals[b, :, part])
      context[b, t] = np.concatenate(chunks)
  return _dense(params, "output_projection")(context), weights.mean(axis=2)


@pytest.mark.parametrize("heads", [2, 4])
def test_matches_sockeye_mhdot(heads):
  query, values, mask = _inputs()
  config = AttentionConfig("scaled_dot", "global", heads=heads, head_projection=True)
  layer, params, args = _init(config, query, values, mask)
  assert params["params"]["source_projection"]["kernel"].shape == (DIM, 2 * DIM)
  assert params["params"]["query_projection"]["kernel"].shape == (DIM, DIM)
  assert params["params"]["output_projection"]["kernel"].shape == (DIM, DIM)
  context, weights = layer.apply(params, *args, method=_apply)
  ref_context, ref_weights = _reference(params, query, values, heads)
  assert context.shape == (B, T, DIM) and weights.shape == (B, T, S)
  np.testing.assert_allclose(weights, ref_weights, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(context, ref_context, atol=1e-5, rtol=1e-5)
  weights = np.asarray(weights)
  assert np.all(weights[~np.broadcast_to(mask[:, None], weights.shape)] == 0.0)
  np.testing.assert_allclose(weights.sum(-1)[LENGTHS > 0], 1.0, atol=1e-6)
  # An empty source has no context to project: W_o 0 + b_o.
  bias = params["params"]["output_projection"]["bias"]
  np.testing.assert_allclose(context[LENGTHS == 0], np.broadcast_to(bias, (1, T, DIM)))

  # One decoder step at a time gives the same as all target steps at once.
  step = layer.apply(params, args[0][:, 1], args[1], mask, method=_apply)
  np.testing.assert_allclose(step[0], context[:, 1], atol=1e-6)
  np.testing.assert_allclose(step[1], weights[:, 1], atol=1e-6)


def test_off_keeps_the_parameter_tree():
  """The key defaults to False, and False adds nothing: the flag only adds the three
  projections, every other parameter keeping its name and initial value."""
  section = fields.defaults(AttentionConfig)
  del section["head_projection"]  # a config stored before the key existed
  assert fields.parse(AttentionConfig, section).head_projection is False
  query, values, mask = _inputs()
  trees = {}
  for flag in (None, False, True):
    extra = {} if flag is None else {"head_projection": flag}
    config = AttentionConfig("general", "global", heads=2, **extra)
    trees[flag] = _init(config, query, values, mask)[1]["params"]
  assert jax.tree.structure(trees[False]) == jax.tree.structure(trees[None])
  assert set(trees[False]) == {"score"}
  assert set(trees[True]) == {"score", *PROJECTIONS}
  jax.tree.map(np.testing.assert_array_equal, trees[False]["score"], trees[True]["score"])


@pytest.mark.parametrize(
  "score,alignment",
  [("general", "global"), ("cosine", "local_m"), ("mul", "local_p")],
)
def test_other_scores_and_alignments(score, alignment):
  query, values, mask = _inputs(1)
  positions = np.broadcast_to(np.arange(T), (B, T))
  config = AttentionConfig(
    score, alignment, window=1, heads=2, max_source_length=S, head_projection=True
  )
  layer, params, args = _init(config, query, values, mask)
  context, weights = layer.apply(params, *args, positions, method=_apply)
  assert context.shape == (B, T, DIM) and weights.shape == (B, T, S)
  weights = np.asarray(weights)
  assert np.all(np.isfinite(np.asarray(context)))
  assert np.all(weights[~np.broadcast_to(mask[:, None], weights.shape)] == 0.0)
  if alignment == "global":  # local-p multiplies by a Gaussian after the softmax
    np.testing.assert_allclose(weights.sum(-1)[LENGTHS > 0], 1.0, atol=1e-6)


def test_with_coverage():
  """Coverage enters the score's tanh over K and sums the heads' mean weights."""
  query, values, mask = _inputs(2)
  config = AttentionConfig(
    "additive",
    "global",
    init="default",
    heads=2,
    coverage="see",
    head_projection=True,
  )
  layer = Attention(config, query_size=DIM)
  q, v = jnp.asarray(query, jnp.float32), jnp.asarray(values, jnp.float32)

  def two_steps(module, q, v):  # the same query twice: only the coverage differs
    memory = module.prepare(v, mask)
    _, first, state = module(q[:, 0], memory)
    context, second, state = module(q[:, 0], memory, state=state)
    return context, first, second, state.coverage

  params = layer.init(jax.random.key(0), q, v, method=two_steps)
  context, first, second, coverage = layer.apply(params, q, v, method=two_steps)
  np.testing.assert_allclose(coverage[..., 0], first + second, atol=1e-6)
  assert context.shape == (B, DIM) and coverage.shape == (B, S, 1)
  for weights in (np.asarray(first), np.asarray(second)):
    np.testing.assert_allclose(weights.sum(-1)[LENGTHS > 0], 1.0, atol=1e-6)
    assert np.all(weights[~mask] == 0.0)
  assert not np.allclose(first[LENGTHS > 1], second[LENGTHS > 1])  # the coverage counts


@pytest.mark.parametrize(
  "fields_,match",
  [
    ({"score": "location"}, r"score='location' does not read; use another score"),
    ({"alignment": "monotonic"}, r"set model\.attention\.head_projection=False"),
    ({"alignment": "mocha"}, r"set model\.attention\.head_projection=False"),
  ],
)
def test_refused_where_it_cannot_work(fields_, match):
  config = AttentionConfig(**{"score": "dot", **fields_, "head_projection": True})
  with pytest.raises(ConfigError, match=match):
    config.resolved(longest_source=S)


def test_refuses_states_of_another_size():
  _, values, mask = _inputs()
  layer = Attention(AttentionConfig("dot", "global", head_projection=True), query_size=DIM + 2)
  with pytest.raises(ConfigError, match=r"projects to the query size \(10\).*got 8"):
    layer.init(jax.random.key(0), jnp.ones((B, DIM + 2)), jnp.asarray(values), mask, method=_apply)
