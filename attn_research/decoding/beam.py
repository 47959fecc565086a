"""Batched beam search with GNMT's length and coverage penalties (Wu et al. 2016 §7).

A finished hypothesis Y with attention p (target step i × source word j) scores

    s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y),
    lp(Y) = ((5 + |Y|) / 6)^α,   cp = β · Σ_j log(min(Σ_i p_ij, 1)),

with |Y| counting `</s>` and j running over the real source words. Alive hypotheses
are ranked by log P. The whole search is one `lax.while_loop`; it stops when no alive
hypothesis can still beat the worst kept finished one in any sentence, or when every
sentence reached its length limit ⌊a · src_len + b⌋ (capped by `max_len`), where `</s>`
is forced. The attention history of every hypothesis is reordered with the beam
back-pointers, so the returned weights are those of the returned tokens.
"""

import jax
import jax.numpy as jnp

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.model import Seq2Seq

NEG_INF = -1.0e9
COVERAGE_FLOOR = 1e-10  # a word that never received attention would make cp = −∞


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
  return ((5.0 + length) / 6.0) ** alpha


def coverage_penalty(attention: jax.Array, src_mask: jax.Array, beta: float) -> jax.Array:
  """`[..., tgt_len, src_len]` attention history → β Σ_j log min(Σ_i p_ij, 1) over real j."""
  coverage = jnp.minimum(attention.sum(axis=-2), 1.0)
  logs = jnp.log(jnp.maximum(coverage, COVERAGE_FLOOR))
  return beta * jnp.sum(jnp.where(src_mask, logs, 0.0), axis=-1)


def _gather_beams(tree, beam_index: jax.Array, batch: int, beam: int):
  """Leaves `[batch * beam, …]` or `[batch, beam, …]` → the rows of `beam_index` `[batch, k]`."""

  def take(x):
    flat = x.shape[0] == batch * beam
    x = x.reshape(batch, beam, *x.shape[1:]) if flat else x
    picked = jnp.take_along_axis(x, beam_index.reshape(beam_index.shape + (1,) * (x.ndim - 2)), 1)
    return picked.reshape(batch * beam_index.shape[1], *x.shape[2:]) if flat else picked

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

  Args:
    model, params: the model.
    src, src_mask: source ids and bool mask.
    beam_size: hypotheses kept per sentence.
    max_len: static bound on the target length (with `</s>`).
    alpha, beta: length and coverage penalty weights (0: plain log-probability).
    max_len_a, max_len_b: per-sentence limit ⌊a · src_len + b⌋ when a > 0 or b > 0.

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

  lengths = src_mask.sum(axis=1)
  if max_len_a > 0 or max_len_b > 0:
    limit = jnp.floor(max_len_a * lengths + max_len_b).astype(jnp.int32)
    limit = jnp.clip(limit, 1, max_len)
  else:
    limit = jnp.full((batch,), max_len, jnp.int32)

  init = {
    "step": jnp.int32(0),
    "state": state,
    "alive_seq": jnp.full((batch, k, max_len + 1), PAD_ID, jnp.int32).at[:, :, 0].set(BOS_ID),
    "alive_logp": jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (batch, 1)),
    "alive_attn": jnp.zeros((batch, k, max_len, src_len)),
    "done_seq": jnp.full((batch, k, max_len + 1), PAD_ID, jnp.int32),
    "done_score": jnp.full((batch, k), NEG_INF),
    "done_attn": jnp.zeros((batch, k, max_len, src_len)),
  }

  def still_running(c):
    # The best an alive hypothesis can still reach: log P only falls, lp is at most
    # lp(max_len) and cp is at most 0.
    best_alive = c["alive_logp"][:, 0] / length_penalty(limit.astype(jnp.float32), alpha)
    can_improve = best_alive > c["done_score"].min(axis=1)
    return (c["step"] < max_len) & jnp.any(can_improve & (c["step"] < limit))

  def body(c):
    t = c["step"]
    tokens = c["alive_seq"][:, :, t].reshape(batch * k)
    state, logits, weights = model.apply(
      variables, memory, c["state"], tokens, method=Seq2Seq.decode_step
    )
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, -1)
    vocab = logp.shape[-1]
    at_limit = (t + 1 >= limit)[:, None, None]
    logp = jnp.where(at_limit & (jnp.arange(vocab) != EOS_ID), NEG_INF, logp)
    candidates = (c["alive_logp"][..., None] + logp).reshape(batch, k * vocab)
    cand_logp, cand_index = jax.lax.top_k(candidates, 2 * k)
    parent, token = cand_index // vocab, cand_index % vocab

    seq = _gather_beams(c["alive_seq"], parent, batch, k).at[:, :, t + 1].set(token)
    attn = _gather_beams(c["alive_attn"], parent, batch, k)
    step_weights = _gather_beams(weights.reshape(batch, k, src_len), parent, batch, k)
    attn = attn.at[:, :, t].set(step_weights)

    # Finished candidates: those that just emitted </s>.
    ended = token == EOS_ID
    cover = coverage_penalty(attn, src_mask[:, None, :], beta)
    score = cand_logp / length_penalty((t + 1).astype(jnp.float32), alpha) + cover
    score = jnp.where(ended & (cand_logp > NEG_INF / 2), score, NEG_INF)
    all_score = jnp.concatenate([c["done_score"], score], axis=1)
    all_seq = jnp.concatenate([c["done_seq"], seq], axis=1)
    all_attn = jnp.concatenate([c["done_attn"], attn], axis=1)
    done_score, keep = jax.lax.top_k(all_score, k)
    done_seq = jnp.take_along_axis(all_seq, keep[..., None], 1)
    done_attn = jnp.take_along_axis(all_attn, keep[..., None, None], 1)

    # Alive: the k best candidates that did not end.
    alive_logp = jnp.where(ended, NEG_INF, cand_logp)
    alive_logp, pick = jax.lax.top_k(alive_logp, k)
    new_parent = jnp.take_along_axis(parent, pick, 1)
    return {
      "step": t + 1,
      "state": _gather_beams(state, new_parent, batch, k),
      "alive_seq": jnp.take_along_axis(seq, pick[..., None], 1),
      "alive_logp": alive_logp,
      "alive_attn": jnp.take_along_axis(attn, pick[..., None, None], 1),
      "done_seq": done_seq,
      "done_score": done_score,
      "done_attn": done_attn,
    }

  final = jax.lax.while_loop(still_running, body, init)
  tokens = final["done_seq"][:, 0, 1:]
  attention = final["done_attn"][:, 0]
  return tokens, attention, final["done_score"][:, 0]
