import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.errors import ConfigError
from attn_research.model import Seq2Seq
from tests.conftest import plain_cell_loop, tiny_seq2seq

VARIANTS = {
  "luong+feed": dict(decoder_type="luong", decoder_input_feeding=True),
  "luong": dict(decoder_type="luong"),
  "luong+feed,local_m": dict(
    decoder_type="luong", decoder_input_feeding=True, attention_alignment="local_m"
  ),
  "luong,local_m": dict(decoder_type="luong", attention_alignment="local_m"),
  "luong+feed,local_p": dict(
    decoder_type="luong", decoder_input_feeding=True, attention_alignment="local_p"
  ),
  "luong,local_p": dict(decoder_type="luong", attention_alignment="local_p"),
  "luong,tfnmt,tied": dict(
    decoder_type="luong",
    decoder_input_feeding=True,
    decoder_tfnmt_compat=True,
    decoder_tie_embeddings=True,
    embedding_size=12,
  ),
  "luong,reverse,residual,zero": dict(
    decoder_type="luong",
    encoder_type="uni",
    encoder_residual=True,
    encoder_reverse_source=True,
    bridge="zero",
    encoder_num_layers=3,
  ),
  "bahdanau,gru": dict(
    decoder_type="bahdanau",
    encoder_cell="gru",
    bridge="dense",
    attention_score="additive",
    decoder_num_layers=1,
  ),
  "bahdanau,shallow": dict(
    decoder_type="bahdanau", decoder_deep_output=False, attention_alignment="local_p"
  ),
  "gnmt": dict(
    decoder_type="gnmt", encoder_type="gnmt", encoder_num_layers=3, decoder_num_layers=3
  ),
  "gnmt,gru,local_m": dict(decoder_type="gnmt", encoder_cell="gru", attention_alignment="local_m"),
  # Coverage: C_t is decoder state, so teacher forcing runs step by step in every decoder.
  "luong,see": dict(
    decoder_type="luong",
    attention_score="additive",
    attention_coverage="see",
    attention_init="default",
  ),
  "luong+feed,tu_nn,local_p": dict(
    decoder_type="luong",
    decoder_input_feeding=True,
    attention_score="concat",
    attention_alignment="local_p",
    attention_coverage="tu_nn",
    attention_init="default",
  ),
  "bahdanau,tu_linguistic": dict(
    decoder_type="bahdanau",
    attention_score="additive",
    attention_coverage="tu_linguistic",
    attention_init="default",
  ),
  "gnmt,see,local_m": dict(
    decoder_type="gnmt",
    attention_score="normed_additive",
    attention_alignment="local_m",
    attention_coverage="see",
    attention_init="default",
  ),
  # Multi-head attention in every decoder, with and without coverage.
  "luong,heads=4": dict(decoder_type="luong", attention_heads=4),
  "luong+feed,heads=2,see": dict(
    decoder_type="luong",
    decoder_input_feeding=True,
    attention_score="additive",
    attention_heads=2,
    attention_coverage="see",
    attention_init="default",
  ),
  "bahdanau,heads=3,local_p": dict(
    decoder_type="bahdanau", attention_score="mul", attention_heads=3, attention_alignment="local_p"
  ),
  "gnmt,heads=2": dict(decoder_type="gnmt", attention_score="scaled_dot", attention_heads=2),
  # Monotonic attention and MoChA: α_{t−1} is decoder state (energies near 0 for the tests).
  "luong,monotonic": dict(
    decoder_type="luong",
    attention_score="normed_additive",
    attention_alignment="monotonic",
    attention_energy_bias=0.0,
  ),
  "luong+feed,mocha": dict(
    decoder_type="luong",
    decoder_input_feeding=True,
    attention_score="scaled_general",
    attention_alignment="mocha",
    attention_energy_bias=0.0,
  ),
  "bahdanau,mocha,recursive": dict(
    decoder_type="bahdanau",
    attention_score="additive",
    attention_alignment="mocha",
    attention_chunk=3,
    attention_expectation="recursive",
    attention_energy_bias=0.0,
    attention_init="default",
  ),
  "gnmt,monotonic": dict(
    decoder_type="gnmt",
    attention_score="general",
    attention_alignment="monotonic",
    attention_energy_bias=0.0,
  ),
  "none_state": dict(decoder_type="none_state"),
  "none_input,gru": dict(decoder_type="none_input", encoder_cell="gru"),
}


_model = tiny_seq2seq


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  src = rng.integers(4, 23, (3, 9)).astype(np.int32)
  lengths = np.array([9, 4, 1])
  mask = np.arange(9)[None] < lengths[:, None]
  src[~mask] = 0
  tgt = rng.integers(4, 17, (3, 6)).astype(np.int32)
  return jnp.asarray(src), jnp.asarray(mask), jnp.asarray(tgt)


MONOTONIC = [name for name in VARIANTS if "monotonic" in name or "mocha" in name]


@pytest.mark.parametrize(
  "name,hard", [(name, False) for name in VARIANTS] + [(name, True) for name in MONOTONIC]
)
def test_teacher_forcing_equals_step_by_step(name, hard):
  # `hard`: monotonic alignments' test-time process, in teacher forcing and in steps.
  overrides = VARIANTS[name]
  model = _model(**overrides)
  src, mask, tgt = _batch()
  params = model.init(jax.random.key(0), src, mask, tgt)["params"]
  logits, weights = model.apply({"params": params}, src, mask, tgt, hard=hard)
  assert logits.shape == (3, 6, 17) and weights.shape == (3, 6, 9)
  memory, state = model.apply({"params": params}, src, mask, hard=hard, method=Seq2Seq.encode)
  for t in range(tgt.shape[1]):
    state, step_logits, step_weights = model.apply(
      {"params": params}, memory, state, tgt[:, t], method=Seq2Seq.decode_step
    )
    np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
    np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)
  if name in MONOTONIC:  # α of a monotonic process: mass ≤ 1, moving forward when hard
    weights = np.asarray(weights)
    padding = np.broadcast_to(~np.asarray(mask)[:, None], weights.shape)
    assert np.all(weights.sum(-1) <= 1.0 + 1e-5) and np.all(weights[padding] == 0)
    if hard:
      first = np.where(weights.sum(-1) > 0, np.argmax(weights > 0, axis=-1), 99)
      assert np.all(np.diff(first, axis=1) >= 0) and (first < 99).any()
  if not name.startswith("none") and overrides.get("attention_alignment", "global") == "global":
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-5)
    assert np.all(
      np.asarray(weights)[~np.broadcast_to(np.asarray(mask)[:, None], weights.shape)] == 0
    )


@pytest.mark.parametrize("encoder", ["uni", "bi"])
def test_encoding_ignores_padding(encoder):
  """A sentence gives the same outputs alone and padded inside a longer batch."""
  model = _model(decoder_input_feeding=True, encoder_type=encoder)
  src, mask, tgt = _batch()
  params = model.init(jax.random.key(0), src, mask, tgt)["params"]
  logits, _ = model.apply({"params": params}, src, mask, tgt)
  n = int(mask[1].sum())
  alone, _ = model.apply({"params": params}, src[1:2, :n], mask[1:2, :n], tgt[1:2])
  np.testing.assert_allclose(alone[0], logits[1], atol=1e-5)


def test_none_state_reads_the_source_only_through_the_initial_state():
  """The plain seq2seq decoder's logits do not change when the encoder states it would
  attend to are replaced: the source reaches it only through the final encoder state."""
  model = _model(
    decoder_type="none_state", encoder_type="uni", encoder_num_layers=1, decoder_num_layers=1
  )
  src, mask, tgt = _batch()
  params = model.init(jax.random.key(0), src, mask, tgt)["params"]
  assert "attention" not in params["decoder"]
  memory, state = model.apply({"params": params}, src, mask, method=Seq2Seq.encode)
  logits, _ = model.apply({"params": params}, src, mask, tgt)
  other = memory.replace(values=memory.values * 0 + 5.0)
  logits_other, _ = model.apply(
    {"params": params}, other, state, tgt, False, method=lambda m, *a: m.decoder(*a)
  )
  np.testing.assert_allclose(logits_other, logits, atol=1e-6)


def test_layer_mismatch_names_the_fix():
  model = _model(encoder_type="uni", decoder_num_layers=1, attention_score="dot")
  src, mask, tgt = _batch()
  with pytest.raises(ConfigError, match=r"model\.decoder\.num_layers"):
    model.init(jax.random.key(0), src, mask, tgt)


@pytest.mark.parametrize("name", ["luong+feed", "bahdanau,gru", "gnmt"])
def test_training_gradient_equals_autodiff_of_a_plain_scan(name, monkeypatch):
  """The fast gradients (the recurrent layers' and the decoder loop's), with dropout and
  padding, equal autodiff of plain `lax.scan`s given the same dropout masks."""
  from attn_research.model import decoder, rnn
  from attn_research.training.losses import token_nll

  model = _model(**VARIANTS[name], dropout=0.3)
  src, mask, tgt = _batch()
  tgt_mask = jnp.asarray(np.arange(6)[None] < np.array([[6], [3], [1]]))
  params = model.init(jax.random.key(0), src, mask, tgt)["params"]

  def loss(params):
    features, matrix, _ = model.apply(
      {"params": params},
      src,
      mask,
      tgt,
      True,
      rngs={"dropout": jax.random.key(3)},
      method=Seq2Seq.features,
    )
    return token_nll(features, matrix, tgt, tgt_mask)[0]

  # Op by op, not jitted: the small programs it compiles are shared with the other
  # tests, and compiling the whole gradient as one program took longer (gnmt: 18 s vs 8 s).
  fast = jax.grad(loss)(params)

  def plain_scan(step, consts, carry, xs):
    return jax.lax.scan(lambda c, x: step(consts, c, x), carry, xs)

  monkeypatch.setattr(decoder, "hoisted_scan", plain_scan)
  for cell_cls in (rnn.LSTMCell, rnn.GRUCell):
    monkeypatch.setattr(
      cell_cls, "loop", staticmethod(functools.partial(plain_cell_loop, cell_cls))
    )
  # Traced again, after the patches (they act when the loss is traced).
  reference = jax.grad(loss)(params)
  for got, want in zip(jax.tree.leaves(fast), jax.tree.leaves(reference), strict=True):
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
