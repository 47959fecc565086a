"""Batched beam search with GNMT's length and coverage penalties (Wu et al. 2016 §7).

A finished hypothesis Y with attention p (target step i × source word j) scores

    s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y),
    lp(Y) = ((5 + |Y|) / 6)^α,   cp = β · Σ_j log(min(Σ_i p_ij, 1)),

with |Y| counting `</s>` and j running over the real source words; hypotheses still
growing are ranked by the same formula at their current length.

The whole search is one `lax.while_loop` that stops at `max_len` or once every sentence
is decided: its best finished hypothesis scores at least the bound log P / lp(n_max) of
every growing one (log P only falls, lp only grows, cp ≤ 0). No growing hypothesis can
overtake it, so stopping never changes the result; with α = β = 0 the rule is "the best
slot has finished". Each step records its tokens, back-pointers and attention rows without
reordering earlier steps, and keeps only each hypothesis's coverage Σ_i p_ij for cp;
the best hypothesis and its attention are read back once after the loop by following
the back-pointers (as TensorFlow's `gather_tree`).
"""

import jax
import jax.numpy as jnp

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.model import Seq2Seq

NEG_INF = -1.0e9
COVERAGE_FLOOR = 1e-10  # a word that never received attention would make cp = −∞


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
  return ((5.0 + length) / 6.0) ** alpha


def coverage_penalty(coverage: jax.Array, src_mask: jax.Array, beta: float) -> jax.Array:
  """`[..., src_len]` coverage Σ_i p_ij → β Σ_j log min(Σ_i p_ij, 1) over real j."""
  coverage = jnp.minimum(coverage, 1.0)
  logs = jnp.log(jnp.maximum(coverage, COVERAGE_FLOOR))
  return beta * jnp.sum(jnp.where(src_mask, logs, 0.0), axis=-1)


def _gather(x: jax.Array, index: jax.Array) -> jax.Array:
  """`[batch, beam, …]` → `[batch, n, …]` at beam indices `index` `[batch, n]`."""
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


def _gather_flat(tree, index: jax.Array, beam: int):
  """Decoder-state leaves `[batch * beam, …]` → `[batch * n, …]` at `index` `[batch, n]`."""

  def take(x):
    picked = _gather(x.reshape(index.shape[0], beam, *x.shape[1:]), index)
    return picked.reshape(-1, *x.shape[1:])

  return jax.tree.map(take, tree)


def beam_search(
  model: Seq2Seq,
  params,
  src: jax.Array,
  src_mask: jax.Array,
  *,
  beam_size: int,
  max_len: int,
  alpha: float = 0.0,
  beta: float = 0.0,
  max_len_a: float = 0.0,
  max_len_b: int = 0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Decodes `[batch, src_len]` sources.

  Each sentence keeps `beam_size` slots. At every step each alive slot proposes every
  token, each finished slot proposes itself unchanged, and the `beam_size` best proposals
  by s(Y, X) survive (the tensorflow/nmt and GNMT procedure; width 1 is greedy search).

  Args:
    model, params: the model.
    src, src_mask: source ids and bool mask.
    beam_size: slots per sentence.
    max_len: static bound on the target length (with `</s>`); a hypothesis that reaches
      it without `</s>` is returned unfinished, as greedy decoding does.
    alpha, beta: length and coverage penalty weights (0: plain log-probability).
    max_len_a, max_len_b: when either is set, sentence limits ⌊a · src_len + b⌋ (at most
      `max_len`) at which `</s>` is forced.

  Returns:
    tokens `[batch, max_len]` of the best hypothesis (`</s>` then `<pad>`), its attention
    weights `[batch, max_len, src_len]` (0 after `</s>`) and its score `[batch]`.
  """
  batch, src_len = src.shape
  k = beam_size
  variables = {"params": params}
  memory, state = model.apply(variables, src, src_mask, method=Seq2Seq.encode)
  repeat = lambda x: jnp.repeat(x, k, axis=0)  # noqa: E731
  memory, state = jax.tree.map(repeat, memory), jax.tree.map(repeat, state)
  mask3 = src_mask[:, None, :]

  if max_len_a > 0 or max_len_b > 0:
    limit = jnp.floor(max_len_a * src_mask.sum(axis=1) + max_len_b).astype(jnp.int32)
    limit = jnp.clip(limit, 1, max_len)
  else:
    limit = jnp.full((batch,), max_len + 1, jnp.int32)  # never forced
  # The largest length penalty any hypothesis of a sentence can reach.
  final_penalty = length_penalty(jnp.minimum(limit, max_len).astype(jnp.float32), alpha)

  slots = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (batch, k))
  init = {
    "step": jnp.int32(0),
    "state": state,
    "last": jnp.full((batch, k), BOS_ID, jnp.int32),
    "logp": jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (batch, 1)),
    "score": jnp.zeros((batch, k)),
    "finished": jnp.zeros((batch, k), bool),
    "decided": jnp.zeros((batch,), bool),
    "coverage": jnp.zeros((batch, k, src_len)),
    # Per step, for each surviving slot: its token, its parent slot, its attention row.
    "tokens": jnp.full((max_len, batch, k), PAD_ID, jnp.int32),
    "parents": jnp.broadcast_to(slots, (max_len, batch, k)),
    "rows": jnp.zeros((max_len, batch, k, src_len)),
  }

  def running(c):
    return (c["step"] < max_len) & ~jnp.all(c["decided"])

  def body(c):
    t = c["step"]
    state, logits, weights = model.apply(
      variables, memory, c["state"], c["last"].reshape(batch * k), method=Seq2Seq.decode_step
    )
    weights = weights.reshape(batch, k, src_len)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, -1)
    vocab = logp.shape[-1]
    forced = (t + 1 >= limit)[:, None, None] & (jnp.arange(vocab) != EOS_ID)
    logp = jnp.where(forced, NEG_INF, logp)

    # Alive slots extend by every token; finished slots stay as they are (one proposal).
    finished = c["finished"]
    grown_coverage = c["coverage"] + weights
    grown = c["logp"][..., None] + logp
    grown_score = grown / length_penalty((t + 1).astype(jnp.float32), alpha)
    grown_score = grown_score + coverage_penalty(grown_coverage, mask3, beta)[..., None]
    kept_score = jnp.where(jnp.arange(vocab) == PAD_ID, c["score"][..., None], NEG_INF)
    score = jnp.where(
      finished[..., None], kept_score, jnp.where(grown > NEG_INF / 2, grown_score, NEG_INF)
    )
    new_logp = jnp.where(finished[..., None], c["logp"][..., None], grown)

    score, flat_index = jax.lax.top_k(score.reshape(batch, k * vocab), k)
    parent, token = flat_index // vocab, flat_index % vocab
    parent_finished = _gather(finished, parent)
    extended = ~parent_finished[..., None]
    coverage = jnp.where(extended, _gather(grown_coverage, parent), _gather(c["coverage"], parent))
    logp = jnp.take_along_axis(new_logp.reshape(batch, k * vocab), flat_index, 1)
    finished = parent_finished | (token == EOS_ID)
    # No `score[:, 0]`: slicing top_k's output makes XLA:CPU sort the whole row instead.
    best_finished = jnp.where(finished, score, 2 * NEG_INF).max(axis=1)
    bound = jnp.where(finished, 2 * NEG_INF, logp / final_penalty[:, None]).max(axis=1)
    return {
      "step": t + 1,
      "state": _gather_flat(state, parent, k),
      "last": token,
      "logp": logp,
      "score": score,
      "finished": finished,
      "decided": best_finished >= bound,
      "coverage": coverage,
      "tokens": c["tokens"].at[t].set(token),
      "parents": c["parents"].at[t].set(parent),
      "rows": c["rows"].at[t].set(jnp.where(extended, _gather(weights, parent), 0.0)),
    }

  final = jax.lax.while_loop(running, body, init)
  tokens, weights = _backtrack(final["tokens"], final["parents"], final["rows"])
  return tokens, weights, final["score"][:, 0]


def _backtrack(tokens: jax.Array, parents: jax.Array, rows: jax.Array):
  """The hypothesis in slot 0 at the end, from per-step `[max_len, batch, beam]` tokens
  and parent slots and `[…, src_len]` attention rows: `[batch, max_len]` tokens and
  `[batch, max_len, src_len]` weights."""

  def back(slot, step):
    step_tokens, step_parents, step_rows = step
    token = jnp.take_along_axis(step_tokens, slot[:, None], axis=1)[:, 0]
    row = _gather(step_rows, slot[:, None])[:, 0]
    return jnp.take_along_axis(step_parents, slot[:, None], axis=1)[:, 0], (token, row)

  slot = jnp.zeros(tokens.shape[1], jnp.int32)
  _, (picked, picked_rows) = jax.lax.scan(back, slot, (tokens, parents, rows), reverse=True)
  return jnp.swapaxes(picked, 0, 1), jnp.swapaxes(picked_rows, 0, 1)
