"""Beam search against brute force, greedy, batch size and teacher-forced attention."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.decoding import beam_search, greedy_decode
from attn_research.decoding.beam import coverage_penalty, length_penalty
from attn_research.decoding.config import DecodeConfig
from tests.conftest import tiny_seq2seq

VOCAB = 6  # <pad> <s> </s> <unk> and two words


def _model(decoder="luong", **attention):
  return tiny_seq2seq(
    **attention,
    src_vocab_size=9,
    tgt_vocab_size=VOCAB,
    embedding_size=4,
    encoder_num_layers=1,
    decoder_num_layers=1,
    encoder_hidden_size=6,
    decoder_type=decoder,
    decoder_input_feeding=True,
  )


def _sources(batch, seed=0):
  """NumPy sources and mask (sliced on the host; jit takes them as they are)."""
  rng = np.random.default_rng(seed)
  src = rng.integers(4, 9, (batch, 5)).astype(np.int32)
  mask = np.arange(5)[None] < rng.integers(1, 6, batch)[:, None]
  src[~mask] = PAD_ID
  return src, mask


@functools.partial(jax.jit, static_argnames="model")
def _init(model, seed):
  src, mask = _sources(2)
  params = model.init(jax.random.key(seed), src, mask, src[:, :3])["params"]
  # Sharper output distributions make the search non-trivial.
  return jax.tree.map(lambda x: 3.0 * x, params)


def _params(model, seed=0):
  return _init(model, seed)  # the seed is traced: one compiled init a model


@functools.partial(jax.jit, static_argnames=("model", "hard"))
def _forward(model, params, src, mask, tgt_in, hard=False):
  """Teacher forcing of `tgt_in` `[n · batch, len]`, each source row repeated n times:
  log-probabilities `[n · batch, len, vocab]` and attention rows."""
  n = tgt_in.shape[0] // src.shape[0]
  repeat = functools.partial(jnp.repeat, repeats=n, axis=0)
  logits, weights = model.apply({"params": params}, repeat(src), repeat(mask), tgt_in, hard=hard)
  return jax.nn.log_softmax(logits), weights


@functools.partial(
  jax.jit, static_argnames=("model", "beam_size", "max_len", "n_best", "max_length_b")
)
def _search_any_penalty(
  model, params, src, mask, alpha, beta, *, beam_size, max_len, n_best=1, max_length_b=0
):
  """`beam_search` with α and β traced, so that every (α, β) shares one compiled search."""
  options = DecodeConfig(
    beam_size=beam_size, length_penalty=alpha, coverage_penalty=beta, max_length_b=max_length_b
  )
  return beam_search(model, params, src, mask, options, max_len=max_len, n_best=n_best)


_coverage_penalty = jax.jit(coverage_penalty)  # β traced: one program for every β


def _host(*arrays):
  return tuple(np.asarray(x) for x in arrays)


def _teacher_forced(model, params, src, mask, hypothesis, length=6):
  """`hypothesis`'s log-probability and attention rows under teacher forcing. The input is
  padded to `length` tokens, so one compiled program serves every hypothesis (a step
  reads no later token)."""
  tgt_in = np.full((1, max(length, len(hypothesis))), PAD_ID, np.int32)
  tgt_in[0, : len(hypothesis)] = [BOS_ID, *hypothesis[:-1]]
  logp, weights = _host(*_forward(model, params, src, mask, tgt_in, hard=True))
  score = float(sum(logp[0, i, y] for i, y in enumerate(hypothesis)))
  return score, weights[0, : len(hypothesis)]


@pytest.mark.parametrize("alpha,beta", [(0.0, 0.0), (0.6, 0.2)])
def test_beam_finds_the_brute_force_best(alpha, beta):
  model = _model()
  params = _params(model)
  src, mask = _sources(3, seed=1)
  max_len = 3
  tokens, _, scores = _host(
    *_search_any_penalty(
      model, params, src, mask, alpha, beta, beam_size=32, max_len=max_len, max_length_b=max_len
    )
  )
  non_eos = [v for v in range(VOCAB) if v != EOS_ID]
  hyps = [
    [*p, EOS_ID] for n in range(1, max_len + 1) for p in itertools.product(non_eos, repeat=n - 1)
  ]
  padded = np.full((len(hyps), max_len), PAD_ID, np.int32)
  for i, hyp in enumerate(hyps):
    padded[i, : len(hyp)] = hyp
  tgt_in = np.concatenate([np.full((len(hyps), 1), BOS_ID, np.int32), padded[:, :-1]], axis=1)
  for row in range(3):
    # Every hypothesis of up to max_len tokens, scored by teacher forcing in one batch.
    one = (src[row : row + 1], mask[row : row + 1])
    logp, weights = _host(*_forward(model, params, *one, tgt_in))
    logp = logp.astype(np.float64)
    coverage = np.stack([weights[i, : len(hyp)].sum(0) for i, hyp in enumerate(hyps)])
    penalties = np.asarray(_coverage_penalty(coverage, mask[row], beta))
    best, best_hyp = -np.inf, None
    for i, hyp in enumerate(hyps):
      n = len(hyp)
      total = sum(logp[i, j, y] for j, y in enumerate(hyp))
      score = total / float(length_penalty(n, alpha)) + float(penalties[i])
      if score > best:
        best, best_hyp = score, hyp
    got = [int(x) for x in tokens[row][: len(best_hyp)]]
    assert got == best_hyp, (row, got, best_hyp)
    np.testing.assert_allclose(scores[row], best, rtol=1e-4)


def _reference_beam(forward, src, mask, k, max_len, alpha, beta):
  """The GNMT procedure run for all `max_len` steps (no early stop), in NumPy, with every
  prefix's next-token log-probabilities and attention from teacher forcing by `forward`:
  the final beam as (tokens, score), best first."""
  real = np.asarray(mask[0])

  def score(h):
    coverage = np.log(np.maximum(np.minimum(h[2], 1.0), 1e-10))[real].sum()
    return h[1] / float(length_penalty(len(h[0]), alpha)) + beta * coverage

  beam = [((), 0.0, np.zeros(src.shape[1]), False)]  # (tokens, log P, coverage, finished)
  for step in range(max_len):
    alive = [h for h in beam if not h[3]]
    candidates = [h for h in beam if h[3]]
    if alive:
      # One shape for every call: max(k, 4) rows of max_len inputs, read at position
      # `step` (rows past the alive ones repeat the last; k = 3 and 4 share a program).
      tgt_in = np.full((max(k, 4), max_len), PAD_ID, np.int32)
      for i in range(len(tgt_in)):
        tgt_in[i, : step + 1] = [BOS_ID, *alive[min(i, len(alive) - 1)][0]]
      logp, weights = _host(*forward(src, mask, tgt_in))
      logp = logp[:, step].astype(np.float64)
      for h, row, attention in zip(alive, logp, weights[:, step], strict=False):
        for token in range(VOCAB):
          candidates.append((h[0] + (token,), h[1] + row[token], h[2] + attention, token == EOS_ID))
    beam = sorted(candidates, key=score, reverse=True)[:k]
  return [(list(h[0]), score(h)) for h in beam]


@pytest.mark.parametrize("alpha,beta", [(0.0, 0.0), (1.0, 0.0), (3.0, 0.3)])
def test_beam_stops_early_only_when_nothing_can_overtake(alpha, beta):
  model = _model()
  params = _params(model, seed=8)
  src, mask = _sources(8, seed=9)
  max_len = 7
  forward = functools.partial(_forward, model, params)
  for row in range(8):
    # One sentence a call: in a batch the loop runs until the last sentence is decided.
    one = (src[row : row + 1], mask[row : row + 1])
    tokens, _, score = _host(
      *_search_any_penalty(model, params, *one, alpha, beta, beam_size=3, max_len=max_len)
    )
    best, best_score = _reference_beam(forward, *one, 3, max_len, alpha, beta)[0]
    assert [int(t) for t in tokens[0][: len(best)]] == best, row
    np.testing.assert_allclose(score[0], best_score, rtol=1e-5)


def test_n_best_are_the_final_beams_best_and_stop_only_when_all_are_final():
  alpha, beta = 1.0, 0.3
  model = _model()
  params = _params(model, seed=8)
  src, mask = _sources(4, seed=9)
  max_len, k, n = 7, 4, 3
  search = jax.jit(
    functools.partial(
      beam_search,
      model,
      options=DecodeConfig(beam_size=k, length_penalty=alpha, coverage_penalty=beta),
      max_len=max_len,
      n_best=n,
    )
  )
  forward = functools.partial(_forward, model, params)
  tokens, weights, scores = _host(*search(params, src, mask))
  assert tokens.shape == (4, n, max_len) and weights.shape == (4, n, max_len, 5)
  for row in range(4):
    one = (src[row : row + 1], mask[row : row + 1])
    for slot, (hyp, score) in enumerate(
      _reference_beam(forward, *one, k, max_len, alpha, beta)[:n]
    ):
      assert [int(t) for t in tokens[row, slot, : len(hyp)]] == hyp, (row, slot)
      np.testing.assert_allclose(scores[row, slot], score, rtol=1e-5)
      if row == 0:  # each hypothesis carries its own attention: teacher forcing's rows
        _, forced = _teacher_forced(model, params, *one, hyp)
        np.testing.assert_allclose(weights[row, slot, : len(hyp)], forced, atol=1e-5)
  with pytest.raises(ValueError, match="n_best=5 must be between 1 and the beam size 4"):
    beam_search(model, params, src, mask, DecodeConfig(beam_size=4), max_len=3, n_best=5)


def test_beam_keeps_top_k_a_partial_sort():
  # XLA:CPU turns top_k into a sort of the whole [batch, beam × vocab] row when its output
  # is sliced; that made every step ~12× slower on an 8000-word vocabulary.
  model = _model()
  params = _params(model)
  src, mask = _sources(2)
  search = jax.jit(
    functools.partial(
      beam_search, model, options=DecodeConfig(beam_size=3, length_penalty=0.6), max_len=4
    )
  )
  compiled = search.lower(params, src, mask).compile().as_text()
  assert "TopK" in compiled and " sort(" not in compiled


@pytest.mark.parametrize(
  "attention",
  [
    {},
    dict(attention_score="additive", attention_coverage="see", attention_heads=2),
    dict(attention_score="normed_additive", attention_alignment="mocha", attention_energy_bias=0.0),
  ],
)
def test_beam_is_independent_of_the_batch_size_and_keeps_the_right_attention(attention):
  model = _model(**attention)
  params = _params(model, seed=3)
  src, mask = _sources(64, seed=2)
  search = jax.jit(
    functools.partial(
      beam_search, model, options=DecodeConfig(beam_size=4, length_penalty=0.6), max_len=6
    )
  )
  tokens, attention, _ = _host(*search(params, src, mask))
  for row in range(0, 64, 9):
    alone, alone_attention, _ = _host(*search(params, src[row : row + 1], mask[row : row + 1]))
    np.testing.assert_array_equal(alone[0], tokens[row])
    np.testing.assert_allclose(alone_attention[0], attention[row], atol=1e-6)
    hyp = [int(t) for t in tokens[row]]
    n = hyp.index(EOS_ID) + 1 if EOS_ID in hyp else len(hyp)
    _, weights = _teacher_forced(model, params, src[row : row + 1], mask[row : row + 1], hyp[:n])
    np.testing.assert_allclose(attention[row][:n], weights, atol=1e-5)
    assert np.all(attention[row][n:] == 0.0)


@pytest.mark.parametrize(
  "attention",
  [
    dict(attention_score="additive", attention_coverage="see", attention_heads=2),
    dict(
      attention_score="scaled_general", attention_alignment="monotonic", attention_energy_bias=0.0
    ),
  ],
)
def test_beam_reorders_the_attention_state_with_its_hypotheses(attention):
  # Every hypothesis's attention must be what teacher forcing gives it, which holds only
  # if each slot's coverage C_t (or monotonic position t_i) followed its back-pointers
  # (the OpenNMT-py #2378 failure).
  model = _model(**attention, attention_init="default")
  params = _params(model, seed=5)
  src, mask = _sources(16, seed=6)
  tokens, attention, _ = _host(
    *jax.jit(
      functools.partial(beam_search, model, options=DecodeConfig(beam_size=4), max_len=6, n_best=4)
    )(params, src, mask)
  )
  # Teacher forcing of all 64 hypotheses at once (a step reads no later token).
  hyps = tokens.reshape(64, 6)
  tgt_in = np.concatenate([np.full((64, 1), BOS_ID, np.int32), hyps[:, :-1]], axis=1)
  _, forced = _host(*_forward(model, params, src, mask, tgt_in, hard=True))
  attention = attention.reshape(64, 6, -1)
  for row, hyp in enumerate(hyps.tolist()):
    n = hyp.index(EOS_ID) + 1 if EOS_ID in hyp else len(hyp)
    np.testing.assert_allclose(attention[row, :n], forced[row, :n], atol=1e-5)


def test_beam_stages_keep_searching_the_open_sentences():
  # Sentences that end after 1–4 steps and one that never ends: the search goes on with
  # 64 → 16 → 4 → 1 sentences and must give each what it gives the sentence alone.
  model = _model()
  params = _params(model, seed=8)
  src, mask = _sources(64, seed=2)
  search = jax.jit(
    functools.partial(
      beam_search, model, options=DecodeConfig(beam_size=4, length_penalty=0.6), max_len=12
    )
  )
  alone = [_host(*search(params, src[i : i + 1], mask[i : i + 1])) for i in range(64)]
  ends = [list(tokens[0]).index(EOS_ID) if EOS_ID in tokens[0] else None for tokens, _, _ in alone]
  chosen = [i for i, end in enumerate(ends) if end is not None]
  chosen.append(ends.index(None))
  assert len(chosen) > 16 and sorted({ends[i] for i in chosen[:-1]}) == [0, 1, 2, 3]
  tokens, attention, scores = _host(*search(params, src[chosen], mask[chosen]))
  for row, i in enumerate(chosen):
    np.testing.assert_array_equal(tokens[row], alone[i][0][0])
    np.testing.assert_allclose(attention[row], alone[i][1][0], atol=1e-6)
    np.testing.assert_allclose(scores[row], alone[i][2][0], rtol=1e-6)


def test_beam_width_one_is_greedy():
  model = _model()
  params = _params(model, seed=4)
  src, mask = _sources(16, seed=5)
  beam, _, _ = jax.jit(
    functools.partial(beam_search, model, options=DecodeConfig(beam_size=1), max_len=7)
  )(params, src, mask)
  greedy, _ = jax.jit(greedy_decode, static_argnums=(0, 4))(model, params, src, mask, 7)
  np.testing.assert_array_equal(beam, greedy)


def test_length_limit_a_src_len_plus_b():
  model = _model()
  params = _params(model)
  src, mask = _sources(8, seed=6)
  tokens, _, _ = jax.jit(
    functools.partial(
      beam_search,
      model,
      options=DecodeConfig(beam_size=3, max_length_a=1.0, max_length_b=1),
      max_len=9,
    )
  )(params, src, mask)
  tokens = np.asarray(tokens)
  for row in range(8):
    hyp = [int(t) for t in tokens[row]]
    assert EOS_ID in hyp and hyp.index(EOS_ID) + 1 <= int(mask[row].sum()) + 1
