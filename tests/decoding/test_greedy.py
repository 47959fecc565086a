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


def test_greedy_feeds_back_its_argmax_and_stops_at_eos():
  model = _model(decoder_input_feeding=True)
  rng = np.random.default_rng(0)
  src = jnp.asarray(rng.integers(4, 11, (6, 5)), jnp.int32)
  mask = jnp.asarray(np.arange(5)[None] < np.array([5, 4, 3, 2, 1, 5])[:, None])
  params = model.init(jax.random.key(3), src, mask, src)["params"]
  # Make </s> likely so that rows finish at different steps.
  params["decoder"]["w_s"]["kernel"] = params["decoder"]["w_s"]["kernel"].at[:, EOS_ID].add(0.3)
  tokens, weights = jax.jit(greedy_decode, static_argnums=(0, 4))(model, params, src, mask, 9)
  tokens = np.asarray(tokens)

  # Reference: a Python loop over decode_step taking the argmax.
  memory, state = model.apply({"params": params}, src, mask, method=Seq2Seq.encode)
  prev = jnp.full((6,), BOS_ID, jnp.int32)
  expected = []
  for _ in range(9):
    state, logits, _ = model.apply(
      {"params": params}, memory, state, prev, method=Seq2Seq.decode_step
    )
    prev = jnp.argmax(logits, -1).astype(jnp.int32)
    expected.append(np.asarray(prev))
  expected = np.stack(expected, 1)
  finished = 0
  for row in range(6):
    ends = np.flatnonzero(expected[row] == EOS_ID)
    stop = ends[0] + 1 if len(ends) else 9
    finished += bool(len(ends))
    np.testing.assert_array_equal(tokens[row, :stop], expected[row, :stop])
    assert np.all(tokens[row, stop:] == PAD_ID)
    assert np.all(np.asarray(weights)[row, stop:] == 0.0)
  assert finished > 0


def test_greedy_pads_every_step_after_all_rows_finish():
  model = _model()
  src = jnp.full((4, 3), 5, jnp.int32)
  mask = jnp.ones((4, 3), bool)
  params = model.init(jax.random.key(0), src, mask, src)["params"]
  params["decoder"]["w_s"]["kernel"] = params["decoder"]["w_s"]["kernel"].at[:, EOS_ID].add(100.0)
  tokens, weights = jax.jit(greedy_decode, static_argnums=(0, 4))(model, params, src, mask, 64)
  assert tokens.shape == (4, 64) and weights.shape == (4, 64, 3)
  np.testing.assert_array_equal(np.asarray(tokens[:, 0]), EOS_ID)
  np.testing.assert_array_equal(np.asarray(tokens[:, 1:]), PAD_ID)
  np.testing.assert_allclose(np.asarray(weights[:, 0]).sum(-1), 1.0, rtol=1e-5)
  assert not np.asarray(weights[:, 1:]).any()


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
  src = jnp.asarray(rng.integers(4, 11, (6, 7)), jnp.int32)
  mask = jnp.asarray(np.arange(7)[None] < np.array([7, 6, 4, 3, 1, 7])[:, None])
  params = model.init(jax.random.key(5), src, mask, src)["params"]
  decode = jax.jit(greedy_decode, static_argnums=(0, 4))
  tokens, weights = decode(model, params, src, mask, 8)
  weights = np.asarray(weights)
  assert set(np.unique(weights)) == {0.0, 1.0}
  attended = np.where(weights.sum(-1) > 0, weights.argmax(-1), 99)
  assert np.all(np.diff(attended, axis=1) >= 0) and (attended < 99).sum() > 6
  for row in range(6):
    alone, alone_weights = decode(model, params, src[row : row + 1], mask[row : row + 1], 8)
    np.testing.assert_array_equal(alone[0], tokens[row])
    np.testing.assert_array_equal(alone_weights[0], weights[row])
