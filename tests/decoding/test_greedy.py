import functools

import jax
import jax.numpy as jnp
import numpy as np

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.decoding import greedy_decode
from attn_research.model import Seq2Seq
from tests.conftest import tiny_seq2seq


def _model(**overrides) -> Seq2Seq:
  """One layer of 8 units each side, 11 source and 7 target words."""
  return tiny_seq2seq(
    src_vocab_size=11,
    tgt_vocab_size=7,
    encoder_num_layers=1,
    decoder_num_layers=1,
    encoder_hidden_size=8,
    **overrides,
  )


@functools.partial(jax.jit, static_argnames="model")
def _init(model, seed, src, mask):
  return model.init(jax.random.key(seed), src, mask, src)["params"]


def _favour_eos(params, bias):
  """Adds `bias` to </s>'s output logit weights (on the host: one float32 add, as jnp's)."""
  kernel = np.array(params["decoder"]["w_s"]["kernel"])
  kernel[:, EOS_ID] += np.float32(bias)
  params["decoder"]["w_s"]["kernel"] = kernel
  return params


def _host(*arrays):
  return tuple(np.asarray(x) for x in arrays)


_decode = jax.jit(greedy_decode, static_argnums=(0, 4))


@functools.partial(jax.jit, static_argnames="model")
def _encode(model, params, src, mask):
  return model.apply({"params": params}, src, mask, method=Seq2Seq.encode)


@functools.partial(jax.jit, static_argnames="model")
def _argmax_step(model, params, memory, state, prev):
  state, logits, _ = model.apply(
    {"params": params}, memory, state, prev, method=Seq2Seq.decode_step
  )
  return state, jnp.argmax(logits, -1).astype(jnp.int32)


def test_greedy_feeds_back_its_argmax_and_stops_at_eos():
  model = _model(decoder_input_feeding=True)
  rng = np.random.default_rng(0)
  src = rng.integers(4, 11, (6, 5)).astype(np.int32)
  mask = np.arange(5)[None] < np.array([5, 4, 3, 2, 1, 5])[:, None]
  params = _init(model, 3, src, mask)
  # Make </s> likely so that rows finish at different steps.
  params = _favour_eos(params, 0.3)
  tokens, weights = _decode(model, params, src, mask, 9)
  tokens, weights = np.asarray(tokens), np.asarray(weights)

  # Reference: a Python loop over decode_step taking the argmax (one compiled step).
  memory, state = _encode(model, params, src, mask)
  prev = np.full((6,), BOS_ID, np.int32)
  expected = []
  for _ in range(9):
    state, prev = _argmax_step(model, params, memory, state, prev)
    expected.append(np.asarray(prev))
  expected = np.stack(expected, 1)
  finished = 0
  for row in range(6):
    ends = np.flatnonzero(expected[row] == EOS_ID)
    stop = ends[0] + 1 if len(ends) else 9
    finished += bool(len(ends))
    np.testing.assert_array_equal(tokens[row, :stop], expected[row, :stop])
    assert np.all(tokens[row, stop:] == PAD_ID)
    assert np.all(weights[row, stop:] == 0.0)
  assert finished > 0


def test_greedy_pads_every_step_after_all_rows_finish():
  model = _model()
  src = np.full((4, 3), 5, np.int32)
  mask = np.ones((4, 3), bool)
  params = _favour_eos(_init(model, 0, src, mask), 100.0)
  tokens, weights = _decode(model, params, src, mask, 64)
  assert tokens.shape == (4, 64) and weights.shape == (4, 64, 3)
  tokens, weights = np.asarray(tokens), np.asarray(weights)
  np.testing.assert_array_equal(tokens[:, 0], EOS_ID)
  np.testing.assert_array_equal(tokens[:, 1:], PAD_ID)
  np.testing.assert_allclose(weights[:, 0].sum(-1), 1.0, rtol=1e-5)
  assert not weights[:, 1:].any()


def test_hard_monotonic_greedy_is_independent_of_the_batch_and_moves_forward():
  # Decoding runs the hard process: one attended position per step (or none once
  # stopped), never moving back, whatever else the batch holds.
  model = _model(
    decoder_input_feeding=True,
    attention_score="normed_additive",
    attention_alignment="monotonic",
    attention_energy_bias=0.0,
    attention_init="default",
  )
  rng = np.random.default_rng(1)
  src = rng.integers(4, 11, (6, 7)).astype(np.int32)
  mask = np.arange(7)[None] < np.array([7, 6, 4, 3, 1, 7])[:, None]
  params = _init(model, 5, src, mask)
  tokens, weights = _host(*_decode(model, params, src, mask, 8))
  assert set(np.unique(weights)) == {0.0, 1.0}
  attended = np.where(weights.sum(-1) > 0, weights.argmax(-1), 99)
  assert np.all(np.diff(attended, axis=1) >= 0) and (attended < 99).sum() > 6
  for row in range(6):
    alone, alone_weights = _host(
      *_decode(model, params, src[row : row + 1], mask[row : row + 1], 8)
    )
    np.testing.assert_array_equal(alone[0], tokens[row])
    np.testing.assert_array_equal(alone_weights[0], weights[row])
