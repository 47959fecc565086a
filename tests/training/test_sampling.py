"""Scheduled sampling: the paper's decays of ε, ε = 1 is teacher forcing, ε = 0 feeds the
model's greedy tokens."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.data.vocab import BOS_ID, EOS_ID
from attn_research.decoding import greedy_decode
from attn_research.model import Seq2Seq
from attn_research.model.decoder import logits
from attn_research.training import steps
from attn_research.training.losses import Objective
from attn_research.training.sampling import ScheduledSampling
from tests.conftest import tiny_seq2seq


def test_the_three_decays_follow_bengio_et_al():
  i = np.arange(0, 5000, 37)
  cases = {
    ScheduledSampling("linear", k=1.0, c=2e-4, minimum=0.1): np.maximum(0.1, 1.0 - 2e-4 * i),
    ScheduledSampling("exponential", k=0.999): 0.999**i,
    ScheduledSampling("inverse_sigmoid", k=100.0): 100 / (100 + np.exp(i / 100)),
    ScheduledSampling("none"): np.ones(len(i)),
  }
  epsilon = jax.jit(lambda sampling, step: sampling.epsilon(step), static_argnums=0)
  for sampling, expected in cases.items():
    got = np.array([epsilon(sampling, s) for s in i])
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-7)


def test_keep_gold_draws_epsilon_per_token_and_always_feeds_bos():
  sampling = ScheduledSampling("linear", k=0.3, c=0.0)
  keep = np.asarray(jax.jit(sampling.keep_gold, static_argnums=2)(jax.random.key(0), 0, (400, 50)))
  assert keep[:, 0].all()
  assert keep[:, 1:].mean() == pytest.approx(0.3, abs=0.01)


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  src = rng.integers(4, 23, (4, 7)).astype(np.int32)
  mask = np.arange(7)[None] < np.array([7, 5, 2, 6])[:, None]
  src[~mask] = 0
  tgt = rng.integers(4, 17, (4, 6)).astype(np.int32)
  tgt_in = np.concatenate([np.full((4, 1), BOS_ID, np.int32), tgt[:, :-1]], 1)
  return jnp.asarray(src), jnp.asarray(mask), jnp.asarray(tgt_in), jnp.asarray(tgt)


VARIANTS = {
  "luong+feed": dict(decoder_input_feeding=True),
  "bahdanau,gru": dict(decoder_type="bahdanau", encoder_cell="gru", attention_score="additive"),
  "gnmt": dict(decoder_type="gnmt", encoder_type="gnmt"),
}


@functools.partial(jax.jit, static_argnames="model")
def _forced_and_sampled(model, params, src, mask, tgt_in, keep_gold):
  variables = {"params": params}
  forced = model.apply(variables, src, mask, tgt_in, method=Seq2Seq.features)
  sampled = model.apply(variables, src, mask, tgt_in, keep_gold, method=Seq2Seq.sampled_features)
  return forced, sampled


@pytest.mark.parametrize("name", list(VARIANTS))
def test_epsilon_one_is_teacher_forcing_and_epsilon_zero_feeds_greedys_tokens(name):
  model = tiny_seq2seq(**VARIANTS[name])
  src, mask, tgt_in, _ = _batch()
  params = jax.jit(model.init)(jax.random.key(0), src, mask, tgt_in)["params"]
  everywhere = jnp.ones(tgt_in.shape, bool)
  forced, sampled = _forced_and_sampled(model, params, src, mask, tgt_in, everywhere)
  # Teacher forcing runs the recurrences in another order (hoisted): equal to float error.
  for a, b in zip(forced, sampled, strict=True):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)

  nowhere = everywhere.at[:, 1:].set(False)
  _, (features, matrix, _) = _forced_and_sampled(model, params, src, mask, tgt_in, nowhere)
  fed = np.asarray(jnp.argmax(logits(features, matrix), -1))  # what each step passes on
  greedy, _ = jax.jit(greedy_decode, static_argnums=(0, 4))(model, params, src, mask, 6)
  greedy = np.asarray(greedy)
  for row in range(len(greedy)):
    ends = np.flatnonzero(greedy[row] == EOS_ID)
    stop = ends[0] + 1 if len(ends) else 6
    np.testing.assert_array_equal(fed[row, :stop], greedy[row, :stop])


def test_the_loss_under_epsilon_one_is_the_cross_entropy():
  model = tiny_seq2seq(decoder_input_feeding=True)
  src, mask, tgt_in, tgt = _batch(1)
  batch = {"src": src, "src_mask": mask, "tgt_in": tgt_in, "tgt_out": tgt, "tgt_mask": tgt > 0}
  params = jax.jit(model.init)(jax.random.key(0), src, mask, tgt_in)["params"]
  always = Objective(sampling=ScheduledSampling("linear", k=1.0, c=0.0))
  never = Objective(sampling=ScheduledSampling("linear", k=0.0, c=0.0))

  @functools.partial(jax.jit, static_argnums=0)
  def loss(objective, step):
    return steps.loss(params, batch, jax.random.key(2), model, objective, step=step)[0]

  plain = float(loss(Objective(), 0))
  assert float(loss(always, 50)) == pytest.approx(plain, rel=1e-5)
  assert float(loss(never, 50)) != pytest.approx(plain, rel=1e-3)  # it feeds itself
