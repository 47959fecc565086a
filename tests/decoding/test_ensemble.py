import functools

import jax
import numpy as np

from attn_research.decoding import beam_search, greedy_decode
from attn_research.decoding.config import DecodeConfig
from attn_research.decoding.ensemble import Ensemble
from attn_research.model import Seq2Seq
from tests.conftest import tiny_seq2seq


@functools.partial(jax.jit, static_argnames="models")
def _init(models, src, mask):
  return [m.init(jax.random.key(i), src, mask, src)["params"] for i, m in enumerate(models)]


def _models():
  """Two different architectures over one vocabulary, and a batch to decode (NumPy)."""
  first = tiny_seq2seq(decoder_input_feeding=True)
  second = tiny_seq2seq(attention_score="dot", encoder_num_layers=1, decoder_num_layers=1)
  rng = np.random.default_rng(0)
  src = rng.integers(4, 23, (5, 7)).astype(np.int32)
  mask = np.arange(7)[None] < np.array([7, 6, 4, 3, 7])[:, None]
  return (first, second), _init((first, second), src, mask), src, mask


@functools.partial(jax.jit, static_argnames="models")
def _first_steps(models, params, src, mask, tokens):
  """One decoding step after encoding, by the ensemble of `models` and by each of them
  (one compiled program)."""

  def step(model, params):
    memory, state = model.apply({"params": params}, src, mask, method=Seq2Seq.encode)
    return model.apply({"params": params}, memory, state, tokens, method=Seq2Seq.decode_step)

  members = [step(m, p) for m, p in zip(models, params, strict=True)]
  return step(Ensemble(models), tuple(params)), members


def test_a_step_is_the_log_of_the_members_mean_probability():
  models, params, src, mask = _models()
  tokens = np.full((5,), 1, np.int32)
  (_, logp, attention), members = _first_steps(models, params, src, mask, tokens)
  probs, rows = [], []
  for _, logits, weights in members:
    z = np.asarray(logits, np.float64)
    probs.append(
      np.exp(z - z.max(-1, keepdims=True))
      / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    )
    rows.append(np.asarray(weights))
  np.testing.assert_allclose(np.asarray(logp), np.log(np.mean(probs, axis=0)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(attention), np.mean(rows, axis=0), rtol=1e-6, atol=1e-7)


def test_an_ensemble_of_one_model_searches_as_that_model():
  (model, _), (params, _), src, mask = _models()
  ensemble = Ensemble([model])
  searches = {
    "greedy": functools.partial(greedy_decode, max_len=9),
    "beam": functools.partial(
      beam_search, options=DecodeConfig(beam_size=3, length_penalty=0.6), max_len=9
    ),
  }
  for name, search in searches.items():
    search = jax.jit(search, static_argnums=0)
    alone = search(model, params, src, mask)
    together = search(ensemble, (params,), src, mask)
    np.testing.assert_array_equal(together[0], alone[0], err_msg=name)
    np.testing.assert_allclose(together[1], alone[1], rtol=1e-5, atol=1e-6, err_msg=name)


@functools.partial(jax.jit, static_argnames="models")
def _teacher_forced(models, params, src, mask, tgt_in, tgt_out):
  """The ensemble's `forced_log_probs` and each member's logits and attention (one
  compiled program)."""
  members = [m.apply({"params": p}, src, mask, tgt_in) for m, p in zip(models, params, strict=True)]
  return Ensemble(models).forced_log_probs(tuple(params), src, mask, tgt_in, tgt_out), members


def test_teacher_forcing_scores_the_reference_by_the_members_mean_probability():
  models, params, src, mask = _models()
  rng = np.random.default_rng(1)
  tgt_out = rng.integers(4, 17, (5, 6)).astype(np.int32)
  tgt_in = np.concatenate([np.ones((5, 1), np.int32), tgt_out[:, :-1]], axis=1)
  (gold, weights), members = _teacher_forced(models, params, src, mask, tgt_in, tgt_out)
  probs, rows = [], []
  for logits, w in members:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    p_gold = np.take_along_axis(z / z.sum(-1, keepdims=True), tgt_out[..., None], -1)
    probs.append(p_gold[..., 0])
    rows.append(np.asarray(w))
  np.testing.assert_allclose(np.asarray(gold), np.log(np.mean(probs, axis=0)), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(weights), np.mean(rows, axis=0), rtol=1e-6, atol=1e-7)
