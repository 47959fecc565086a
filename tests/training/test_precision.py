"""bfloat16 computation against float32 on the same parameters and batch."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.data.vocab import BOS_ID, PAD_ID
from attn_research.training import steps
from attn_research.training.evaluator import make_decoder
from attn_research.training.precision import compute_params
from tests.conftest import tiny_seq2seq

# bfloat16 keeps 8 bits of mantissa (one rounding: up to 0.4%). Measured on these models:
# loss within 7e-5 relative; gradient cosine ≥ 0.998 for Luong, ≥ 0.985 for the biases
# of Bahdanau's GRU decoder, whose gradient sums cancel most.
LOSS_RTOL = 1e-3
GRAD_COSINE = 0.98


def _batch(batch=6, src_len=7, tgt_len=6, seed=0):
  rng = np.random.default_rng(seed)
  src = rng.integers(4, 23, (batch, src_len)).astype(np.int32)
  src_mask = np.arange(src_len)[None] < rng.integers(2, src_len + 1, batch)[:, None]
  tgt = rng.integers(3, 17, (batch, tgt_len)).astype(np.int32)
  tgt_mask = np.arange(tgt_len)[None] < rng.integers(2, tgt_len + 1, batch)[:, None]
  src[~src_mask], tgt[~tgt_mask] = PAD_ID, PAD_ID
  tgt_in = np.concatenate([np.full((batch, 1), BOS_ID), tgt[:, :-1]], axis=1).astype(np.int32)
  return {
    "src": jnp.asarray(src),
    "src_mask": jnp.asarray(src_mask),
    "tgt_in": jnp.asarray(tgt_in),
    "tgt_out": jnp.asarray(tgt),
    "tgt_mask": jnp.asarray(tgt_mask),
  }


def test_compute_params_casts_floating_leaves_only():
  # Built on the host and put on the device: no compiled fill.
  params = {"w": jnp.asarray(np.ones((2, 3), np.float32)), "step": jnp.asarray(np.int32(1))}
  assert compute_params(params, "float32") is params
  cast = compute_params(params, "bfloat16")
  assert cast["w"].dtype == jnp.bfloat16 and cast["step"].dtype == jnp.int32


@pytest.mark.parametrize(
  "overrides",
  [
    dict(decoder_input_feeding=True, dropout=0.3),
    dict(attention_alignment="local_p", attention_window=2),
    dict(decoder_type="bahdanau", encoder_cell="gru", attention_score="additive"),
    dict(
      decoder_type="bahdanau",
      encoder_cell="gru",
      attention_score="additive",
      attention_coverage="tu_nn",
      attention_heads=2,
      attention_init="default",  # Tu's 0 and 1e-3 starts give gradients below bf16's grain
    ),
  ],
  ids=["luong+feed", "local_p", "bahdanau-gru", "bahdanau-tu_nn-heads"],
)
def test_bfloat16_train_step_matches_float32(overrides):
  # One layer each: a second layer runs the same code again and is one more pair of
  # recurrent loops to compile (the train steps compiled in 71 s instead of 91 s).
  model = tiny_seq2seq(**overrides, encoder_num_layers=1, decoder_num_layers=1)
  batch = _batch()
  params = model.init(jax.random.key(0), batch["src"], batch["src_mask"], batch["tgt_in"])
  rng = jax.random.key(1)

  def grads(dtype):
    return jax.jit(functools.partial(steps.gradients, model=model, dtype=dtype))(
      params["params"], batch, rng
    )

  full_grads, full = grads("float32")
  half_grads, half = grads("bfloat16")
  np.testing.assert_allclose(half["nll_sum"], full["nll_sum"], rtol=LOSS_RTOL)
  for path, a, b in zip(
    jax.tree_util.tree_leaves_with_path(full_grads),
    jax.tree.leaves(full_grads),
    jax.tree.leaves(half_grads),
    strict=True,
  ):
    assert b.dtype == jnp.float32  # gradients of the float32 parameters
    a, b = np.ravel(a), np.ravel(b)
    if not a.any():  # Bahdanau's W_a, U_a while v_a is still its initial 0
      assert not b.any()
      continue
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert cosine > GRAD_COSINE, (jax.tree_util.keystr(path[0]), cosine)


def test_bfloat16_step_computes_in_bfloat16_and_normalises_in_float32():
  model = tiny_seq2seq(decoder_input_feeding=True)
  batch = _batch()
  params = model.init(jax.random.key(0), batch["src"], batch["src_mask"], batch["tgt_in"])
  jaxpr = str(
    jax.make_jaxpr(functools.partial(steps.eval_step, model=model, dtype="bfloat16"))(
      params["params"], batch
    )
  )
  assert "bf16[6,48] = dot_general" in jaxpr  # a decoder step's LSTM gates
  assert "bf16[6,1,7] = dot_general" in jaxpr  # its attention scores
  assert "f32[6,1,7] = exp" in jaxpr  # normalised in float32
  assert "f32[36,17] = dot_general" in jaxpr  # logits of all 6 × 6 positions, float32


@pytest.mark.parametrize("beam_size", [0, 3])
def test_bfloat16_decoding_returns_float32_weights(beam_size):
  import ml_collections

  model = tiny_seq2seq(decoder_input_feeding=True)
  batch = _batch(batch=8)
  params = model.init(jax.random.key(2), batch["src"], batch["src_mask"], batch["tgt_in"])
  decode = ml_collections.ConfigDict(
    dict(
      beam_size=beam_size,
      length_penalty=0.0,
      coverage_penalty=0.0,
      max_length_a=0.0,
      max_length_b=0,
    )
  )
  outputs = {
    dtype: jax.jit(make_decoder(model, decode, 6, dtype))(
      params["params"], batch["src"], batch["src_mask"]
    )
    for dtype in ("float32", "bfloat16")
  }
  tokens, weights = outputs["bfloat16"]
  assert weights.dtype == jnp.float32 and tokens.shape == (8, 6)
  # Sliced on the host (slicing a device array would compile a program of its own).
  np.testing.assert_allclose(
    np.asarray(weights)[:, 0], np.asarray(outputs["float32"][1])[:, 0], atol=2e-2
  )
