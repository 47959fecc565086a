"""Batched beam search with GNMT's length and coverage penalties (Wu et al. 2016 §7).

A finished hypothesis Y with attention p (target step i × source word j) scores

    s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y),
    lp(Y) = ((5 + |Y|) / 6)^α,   cp = β · Σ_j log(min(Σ_i p_ij, 1)),

with |Y| counting `</s>` and j running over the real source words; hypotheses still
growing are ranked by the same formula at their current length.

A sentence is decided once its best finished hypothesis scores at least the bound
log P / lp(n_max) of every growing one (log P only falls, lp only grows, cp ≤ 0): no
growing hypothesis can overtake it, so leaving it never changes the result (with
α = β = 0 the rule is "the best slot has finished"). The search runs in stages, each a
`lax.while_loop` over a quarter of the previous stage's sentences (64, 16, 4, 1), the
undecided ones first: a stage ends once the next one can hold every undecided sentence,
the last once all are decided or at `max_len`. So one long sentence keeps 4 rows of
beams busy, not the whole batch's, with a fixed set of shapes. Each step records its tokens, back-pointers and attention rows without
reordering earlier steps, and keeps only each hypothesis's coverage Σ_i p_ij for cp;
the best hypothesis and its attention are read back once after the loop by following
the back-pointers (as TensorFlow's `gather_tree`).
"""

import jax
import jax.numpy as jnp

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID
from attn_research.decoding.config import DecodeConfig
from attn_research.model import Seq2Seq

NEG_INF = -1.0e9
COVERAGE_FLOOR = 1e-10  # a word that never received attention would make cp = −∞
STAGE_SHRINK = 4  # each stage of the search keeps a quarter of the sentences (rounded up)


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
  options: DecodeConfig,
  max_len: int,
  n_best: int = 1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Decodes `[batch, src_len]` sources.

  Each sentence keeps `options.beam_size` slots. At every step each alive slot proposes every
  token, each finished slot proposes itself unchanged, and the `beam_size` best proposals
  by s(Y, X) survive (the tensorflow/nmt and GNMT procedure; width 1 is greedy search).

  Args:
    model, params: the model.
    src, src_mask: source ids and bool mask.
    options: `beam_size` (slots per sentence), the penalties' weights α
      (`length_penalty`) and β (`coverage_penalty`; 0: plain log-probability), and
      `max_length_a`, `max_length_b`: when either is set, sentence limits
      ⌊a · src_len + b⌋ (at most `max_len`) at which `</s>` is forced.
    max_len: static bound on the target length (with `</s>`); a hypothesis that reaches
      it without `</s>` is returned unfinished, as greedy decoding does.
    n_best: hypotheses returned per sentence (≤ `beam_size`): a sentence is then decided
      once its `n_best`-th best finished hypothesis cannot be overtaken.

  Returns:
    tokens `[batch, max_len]` of the best hypothesis (`</s>` then `<pad>`), its attention
    weights `[batch, max_len, src_len]` (0 after `</s>`) and its score `[batch]`; with
    `n_best` > 1, the `n_best` best, best first, along a second axis: `[batch, n_best, …]`.
  """
  k, alpha, beta = options.beam_size, options.length_penalty, options.coverage_penalty
  if not 1 <= n_best <= k:
    raise ValueError(f"n_best={n_best} must be between 1 and the beam size {k}.")
  batch, src_len = src.shape
  variables = {"params": params}
  memory, state = model.apply(variables, src, src_mask, hard=True, method=Seq2Seq.encode)
  repeat = lambda x: jnp.repeat(x, k, axis=0)  # noqa: E731

  if options.max_length_a > 0 or options.max_length_b > 0:
    lengths = src_mask.sum(axis=1)
    limit = jnp.floor(options.max_length_a * lengths + options.max_length_b).astype(jnp.int32)
    limit = jnp.clip(limit, 1, max_len)
  else:
    limit = jnp.full((batch,), max_len + 1, jnp.int32)  # never forced

  # What each searched sentence carries: its slots' decoder rows `[n * k, …]` (memory and
  # state) and per-sentence arrays `[n, …]`; `ids` are its rows of the output buffers.
  live = {
    "decoder": (jax.tree.map(repeat, memory), jax.tree.map(repeat, state)),
    "ids": jnp.arange(batch),
    "src_mask": src_mask,
    "limit": limit,
    # The largest length penalty any hypothesis of a sentence can reach.
    "final_penalty": length_penalty(jnp.minimum(limit, max_len).astype(jnp.float32), alpha),
    "last": jnp.full((batch, k), BOS_ID, jnp.int32),
    "logp": jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (batch, 1)),
    "score": jnp.zeros((batch, k)),
    "finished": jnp.zeros((batch, k), bool),
    "decided": jnp.zeros((batch,), bool),
    "coverage": jnp.zeros((batch, k, src_len)),
  }
  slots = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (batch, k))
  out = {
    # Per step, for each surviving slot: its token, its parent slot, its attention row.
    "tokens": jnp.full((max_len, batch, k), PAD_ID, jnp.int32),
    "parents": jnp.broadcast_to(slots, (max_len, batch, k)),
    "rows": jnp.zeros((max_len, batch, k, src_len)),
    "score": jnp.zeros((batch, k)),
  }

  def body(carry):
    t, c, out = carry
    memory, state = c["decoder"]
    n = c["ids"].shape[0]
    state, logits, weights = model.apply(
      variables, memory, state, c["last"].reshape(n * k), method=Seq2Seq.decode_step
    )
    weights = weights.reshape(n, k, src_len)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(n, k, -1)
    vocab = logp.shape[-1]
    forced = (t + 1 >= c["limit"])[:, None, None] & (jnp.arange(vocab) != EOS_ID)
    logp = jnp.where(forced, NEG_INF, logp)

    # Alive slots extend by every token; finished slots stay as they are (one proposal).
    finished = c["finished"]
    grown_coverage = c["coverage"] + weights
    grown = c["logp"][..., None] + logp
    grown_score = grown / length_penalty((t + 1).astype(jnp.float32), alpha)
    grown_score += coverage_penalty(grown_coverage, c["src_mask"][:, None, :], beta)[..., None]
    kept_score = jnp.where(jnp.arange(vocab) == PAD_ID, c["score"][..., None], NEG_INF)
    score = jnp.where(
      finished[..., None], kept_score, jnp.where(grown > NEG_INF / 2, grown_score, NEG_INF)
    )
    new_logp = jnp.where(finished[..., None], c["logp"][..., None], grown)

    score, flat_index = jax.lax.top_k(score.reshape(n, k * vocab), k)
    parent, token = flat_index // vocab, flat_index % vocab
    parent_finished = _gather(finished, parent)
    extended = ~parent_finished[..., None]
    coverage = jnp.where(extended, _gather(grown_coverage, parent), _gather(c["coverage"], parent))
    logp = jnp.take_along_axis(new_logp.reshape(n, k * vocab), flat_index, 1)
    finished = parent_finished | (token == EOS_ID)
    # No `score[:, 0]`: slicing top_k's output makes XLA:CPU sort the whole row instead.
    finished_scores = jnp.where(finished, score, 2 * NEG_INF)
    if n_best == 1:
      best_finished = finished_scores.max(axis=1)
    else:  # the n-th best finished one: then the n best are all final
      best_finished = jnp.sort(finished_scores, axis=1)[:, -n_best]
    bound = jnp.where(finished, 2 * NEG_INF, logp / c["final_penalty"][:, None]).max(axis=1)
    c = {
      **c,
      "decoder": (memory, _gather_flat(state, parent, k)),
      "last": token,
      "logp": logp,
      "score": score,
      "finished": finished,
      "decided": best_finished >= bound,
      "coverage": coverage,
    }
    ids, rows = c["ids"], jnp.where(extended, _gather(weights, parent), 0.0)
    out = {
      "tokens": out["tokens"].at[t, ids].set(token),
      "parents": out["parents"].at[t, ids].set(parent),
      "rows": out["rows"].at[t, ids].set(rows.astype(out["rows"].dtype)),
      "score": out["score"].at[ids].set(score),
    }
    return t + 1, c, out

  # Sentences left behind keep their outputs: a decided sentence's best slot never
  # changes, and the steps it skips read as <pad> with itself as parent.
  t = jnp.int32(0)
  sizes = _stage_sizes(batch)
  for size, next_size in zip(sizes, (*sizes[1:], 0), strict=True):
    live = _keep_sentences(live, size, k)

    def running(carry, next_size=next_size):
      t, c, _ = carry
      return (t < max_len) & (jnp.sum(~c["decided"]) > next_size)

    t, live, out = jax.lax.while_loop(running, body, (t, live, out))
  tokens, weights = _backtrack(out["tokens"], out["parents"], out["rows"], n_best)
  if n_best == 1:
    return tokens[:, 0], weights[:, 0], out["score"][:, 0]
  return tokens, weights, out["score"][:, :n_best]


def _stage_sizes(batch: int) -> tuple[int, ...]:
  """Sentences searched together, stage by stage: a quarter fewer each time, so that
  one long sentence does not keep a whole batch's rows busy (as toolkits that drop
  finished sentences do, with a few fixed shapes instead of one a sentence count)."""
  sizes = [batch]
  while sizes[-1] > 1:
    sizes.append(-(-sizes[-1] // STAGE_SHRINK))
  return tuple(sizes)


def _keep_sentences(live: dict, size: int, k: int) -> dict:
  """The `size` first sentences of `live` with the undecided ones first."""
  n = live["ids"].shape[0]
  if size == n:
    return live
  decided = live["decided"]
  # A stable partition, undecided first (a sort here would be one more XLA sort).
  position = jnp.where(
    decided, jnp.sum(~decided) + jnp.cumsum(decided) - 1, jnp.cumsum(~decided) - 1
  )
  keep = jnp.zeros(n, jnp.int32).at[position].set(jnp.arange(n, dtype=jnp.int32))[:size]

  def rows(x):
    return x.reshape(n, k, *x.shape[1:])[keep].reshape(size * k, *x.shape[1:])

  return {
    name: jax.tree.map(rows, value) if name == "decoder" else value[keep]
    for name, value in live.items()
  }


def _backtrack(tokens: jax.Array, parents: jax.Array, rows: jax.Array, n: int):
  """The hypotheses in slots 0…n−1 at the end, from per-step `[max_len, batch, beam]`
  tokens and parent slots and `[…, src_len]` attention rows: `[batch, n, max_len]` tokens
  and `[batch, n, max_len, src_len]` weights."""

  def back(slot, step):
    step_tokens, step_parents, step_rows = step
    token = jnp.take_along_axis(step_tokens, slot, axis=1)
    row = _gather(step_rows, slot)
    return jnp.take_along_axis(step_parents, slot, axis=1), (token, row)

  slot = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (tokens.shape[1], n))
  _, (picked, picked_rows) = jax.lax.scan(back, slot, (tokens, parents, rows), reverse=True)
  return jnp.moveaxis(picked, 0, 2), jnp.moveaxis(picked_rows, 0, 2)
