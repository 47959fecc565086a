import jax
import numpy as np

from attn_research.model.bridge import DenseBridge, LastBridge, ZeroBridge
from attn_research.model.encoder import ENCODERS, EncoderConfig
from attn_research.model.rnn import reverse_padded


def _tokens():
  rng = np.random.default_rng(0)
  src = rng.integers(4, 20, (3, 7)).astype(np.int32)
  mask = np.arange(7)[None] < np.array([7, 4, 2])[:, None]
  src[~mask] = 0
  return src, mask


def _encoder(kind, **kw):
  config = EncoderConfig(kind, "lstm", num_layers=3, hidden_size=8, **kw)
  return ENCODERS.get(kind)(config, vocab_size=20, embedding_size=6, dropout=0.0)


def test_reverse_source_reads_backwards_and_returns_states_in_source_order():
  src, mask = _tokens()
  forward = _encoder("uni")
  reverse = _encoder("uni", reverse_source=True)

  @jax.jit
  def run(src, mask):  # one compiled program, not one per operation
    params = forward.init(jax.random.key(0), src, mask, False)
    by_flag = reverse.apply(params, src, mask, False)
    by_hand = forward.apply(params, reverse_padded(src, mask.sum(1)), mask, False)
    return by_flag, by_hand, reverse_padded(by_hand.states, mask.sum(1))

  by_flag, by_hand, by_hand_states = run(src, mask)
  np.testing.assert_allclose(by_flag.states, by_hand_states, atol=1e-6)
  for a, b in zip(jax.tree.leaves(by_flag.final), jax.tree.leaves(by_hand.final), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_gnmt_encoder_layout():
  src, mask = _tokens()
  encoder = _encoder("gnmt")

  @jax.jit
  def run(src, mask):  # initialisation and encoding: one compiled program
    params = encoder.init(jax.random.key(0), src, mask, False)["params"]
    return params, encoder.apply({"params": params}, src, mask, False)

  params, out = run(src, mask)
  assert {"layer0_dir0", "layer0_dir1", "layer1_dir0", "layer2_dir0"} <= set(params)
  assert "layer1_dir1" not in params
  assert params["layer0_dir0"]["w_h"].shape == (4, 16)  # 2 × 4 units in the first layer
  assert params["layer1_dir0"]["w_h"].shape == (8, 32)
  assert out.states.shape == (3, 7, 8) and out.backward_first.shape == (3, 4)
  assert np.all(np.asarray(out.states)[~np.asarray(mask)] == 0.0)


def test_bridges():
  src, mask = _tokens()
  encoder = _encoder("bi")
  out = jax.jit(
    lambda src, mask: encoder.apply(
      encoder.init(jax.random.key(0), src, mask, False), src, mask, False
    )
  )(src, mask)
  zero = jax.jit(ZeroBridge(num_layers=2, hidden_size=8, cell="lstm").apply)({}, out)
  assert len(zero) == 2 and all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(zero))
  assert LastBridge(num_layers=3, hidden_size=8, cell="lstm").apply({}, out) is out.final
  dense = DenseBridge(num_layers=1, hidden_size=8, cell="gru")

  @jax.jit
  def dense_init_and_apply(out):  # one compiled program
    p = dense.init(jax.random.key(1), out)
    return p, dense.apply(p, out)

  p, ((s0,),) = dense_init_and_apply(out)
  kernel = np.asarray(p["params"]["layer0_part0"]["kernel"])
  bias = np.asarray(p["params"]["layer0_part0"]["bias"])
  np.testing.assert_allclose(
    s0, np.tanh(np.asarray(out.backward_first) @ kernel + bias), atol=1e-6
  )  # s_0 = tanh(W_s ←h_1)
