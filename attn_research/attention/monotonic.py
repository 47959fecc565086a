"""Monotonic alignments (`model.attention.alignment = monotonic | mocha`): online attention
whose test-time cost is linear in the source and target lengths.

Raffel et al. 2017 (`monotonic`): at target step i the decoder reads the source forward
from where it last attended, t_{i−1}, and stops at the first position j whose choosing
probability p_{i,j} = σ(e_{i,j}) fires; it attends to h̄_j alone. When none fires the
context is zero, and so is every later step's (the process has left the source).
Chiu & Raffel 2018 (`mocha`) then attends with a softmax (or the configured normaliser)
over the chunk of w = `model.attention.chunk` positions ending at t_i, scored by a second,
chunk energy u_{i,j}.

Energies: e = score(q, h̄_j) + r, r a learned scalar starting at `model.attention
.energy_bias`: −1 by default, Lingvo's; Raffel et al.'s code suggests −4, which spreads
the first expected alignments over long sources (on `dates`, −4 learned the hard process
more slowly: see docs/attention.md). With the
`normed_additive` score this is their Eq. 13, g·(v/‖v‖)ᵀ tanh(W q + U h̄ + b) + r with g
from 1/√N; with `scaled_general` it is TF-Addons' Luong-monotonic g·qᵀW h̄ + r, g from 1.
MoChA's chunk energy is a second score of the same kind with its own parameters (an
offset would not change a normalisation over the chunk).

Training and teacher-forced evaluation take the expectation over the process (Raffel et
al. Eqs. 9–14): with α₀ one-hot at the first position,

  q_{i,j} = (1 − p_{i,j−1}) q_{i,j−1} + α_{i−1,j},   α_{i,j} = p_{i,j} q_{i,j}.

`model.attention.expectation` picks how:
  * `parallel` (the default): the paper's parallel form,
      α_i = p_i ⊙ cumprod_excl(1 − p_i) ⊙ cumsum(α_{i−1} / cumprod_excl(1 − p_i)),
    with TF-Addons' stability measures: the cumulative product taken in log space over
    factors clipped to [tiny, 1] (`safe_cumprod`), and the divisor clipped to [1e−10, 1].
    It is inexact wherever Π_{l<k} (1 − p_l) falls below 1e−10 at a position k that holds
    mass of α_{i−1}: after a p of 1 (a saturated sigmoid), or after enough positions (at
    p ≈ 0.27, r = −1's start, about 74); use `recursive` for long sources.
  * `recursive`: the recursion itself, exact, evaluated as a parallel prefix scan over the
    affine maps q ↦ (1 − p_{j−1}) q + α_{i−1,j} (log-depth, no division).
While training, Gaussian noise N(0, σ_n²) (`model.attention.sigmoid_noise`) is added to e
before the sigmoid, which drives p towards 0 or 1 (Raffel et al.'s pre-sigmoid noise).
Σ_j α_{i,j} ≤ 1: the probability of stopping nowhere is not renormalised. MoChA's
expected attention spreads each α_{i,k} over the chunk ending at k,

  β_{i,j} = Σ_{k=j}^{j+w−1} α_{i,k} · exp(u_{i,j}) / Σ_{l=k−w+1}^{k} exp(u_{i,l}),

computed as a normalisation of each chunk's w energies (the softmax subtracts each chunk's
own maximum, so it is exact for any energies: the notebook's stable form, O(S·w)),
so Σ_j β_{i,j} = Σ_j α_{i,j} and w = 1 gives β = α.

Decoding (`hard`): the hard process, p firing where e > 0 (no noise). The search reads
the source forward from t_{i−1} in blocks of `LOOKAHEAD` positions, scoring only those,
so a step costs O(w + positions passed) whatever the source length, and a sentence
O(S + T). Teacher forcing can run the hard process too, for the alignments of the
reference that the test-time model would produce.
"""

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.attention.alignments import ALIGNMENTS, _context, _gather, _scatter
from attn_research.attention.memory import Memory
from attn_research.attention.normalizers import NORMALIZERS
from attn_research.attention.scores import Score

if TYPE_CHECKING:
  from attn_research.attention.attention import AttentionConfig

EXPECTATIONS = ("parallel", "recursive")
LOOKAHEAD = 8  # source positions the hard search scores at once
DIVISOR_FLOOR = 1e-10  # TF-Addons' clip of the parallel form's divisor


def _exclusive_cumprod(x: jax.Array) -> jax.Array:
  """Π_{l<j} x_l over the last axis, in log space with factors clipped to [tiny, 1]
  (TF-Addons' `safe_cumprod`)."""
  logs = jnp.cumsum(jnp.log(jnp.clip(x, jnp.finfo(x.dtype).tiny, 1.0)), axis=-1)
  return jnp.exp(jnp.concatenate([jnp.zeros_like(logs[..., :1]), logs[..., :-1]], axis=-1))


def _parallel_factors(p: jax.Array) -> tuple[jax.Array, jax.Array]:
  """What the parallel form needs of p alone: p ⊙ cumprod_excl(1 − p) and the divisor."""
  cumprod = _exclusive_cumprod(1.0 - p)
  return p * cumprod, jnp.clip(cumprod, DIVISOR_FLOOR, 1.0)


def _parallel_step(factors: tuple[jax.Array, jax.Array], previous: jax.Array) -> jax.Array:
  scale, divisor = factors
  return scale * jnp.cumsum(previous / divisor, axis=-1)


def _recursive_step(p: jax.Array, previous: jax.Array) -> jax.Array:
  def compose(first, second):  # q ↦ a₂(a₁q + b₁) + b₂
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2

  decay = jnp.concatenate([jnp.ones_like(p[..., :1]), 1.0 - p[..., :-1]], axis=-1)
  _, q = jax.lax.associative_scan(compose, (decay, previous), axis=-1)
  return p * q


def expected_alignment(p: jax.Array, previous: jax.Array, form: str = "parallel") -> jax.Array:
  """α_i `[..., src_len]` from choosing probabilities p_i (0 on padding) and α_{i−1}, in
  `form` (one of `EXPECTATIONS`)."""
  if form == "parallel":
    return _parallel_step(_parallel_factors(p), previous)
  return _recursive_step(p, previous)


def _windows(x: jax.Array, width: int, fill) -> jax.Array:
  """`[..., s]` → `[..., s, width]`: entry i of row k is x_{k − width + 1 + i}, `fill`
  before the first position."""
  src_len = x.shape[-1]
  before = jnp.full((*x.shape[:-1], width - 1), fill, x.dtype)
  padded = jnp.concatenate([before, x], axis=-1)
  return jnp.stack([padded[..., i : i + src_len] for i in range(width)], axis=-1)


def chunkwise(
  alpha: jax.Array, energies: jax.Array, mask: jax.Array, width: int, normalize
) -> jax.Array:
  """MoChA's expected attention β `[..., src_len]` from α and chunk energies u of the same
  shape; `mask` (broadcastable) holds the real positions, `normalize(energies, mask)` is
  the chunk's normaliser."""
  mask = jnp.broadcast_to(mask, energies.shape)
  chunks = normalize(_windows(energies, width, 0), _windows(mask, width, False))
  spread = alpha[..., None] * chunks.astype(
    alpha.dtype
  )  # row k gives spread[k, i] to k − w + 1 + i
  beta = jnp.zeros_like(alpha)
  for i in range(width):
    shift = width - 1 - i
    part = spread[..., shift:, i]
    beta += jnp.concatenate([part, jnp.zeros_like(spread[..., :shift, i])], axis=-1)
  return beta


def first_firing(energy, start: jax.Array, lengths: jax.Array, src_len: int) -> jax.Array:
  """The hard process: for each row, the first j ≥ `start` (and < its length) with
  `energy(index)[j] > 0`, else `src_len` (stopped: no position is ever chosen again).

  Args:
    energy: `[batch, k]` positions → `[batch, k]` energies.
    start: `[batch]` int32, t_{i−1}.
    lengths: `[batch]` int32 real source lengths.
    src_len: the padded length.
  """
  width = min(LOOKAHEAD, src_len)

  def open_rows(carry):
    base, found = carry
    return (found < 0) & (base < lengths)

  def body(carry):
    base, found = carry
    index = base[:, None] + jnp.arange(width)
    fires = (energy(jnp.minimum(index, src_len - 1)) > 0) & (index < lengths[:, None])
    searching = open_rows(carry)
    found = jnp.where(searching & fires.any(-1), base + jnp.argmax(fires, axis=-1), found)
    return jnp.where(searching, base + width, base), found

  carry = (start, jnp.full_like(start, -1))
  _, found = jax.lax.while_loop(lambda c: jnp.any(open_rows(c)), body, carry)
  return jnp.where(found < 0, src_len, found)


class Monotonic(nn.Module):
  """Raffel et al. 2017's hard monotonic attention (the module docstring).

  Attributes:
    config: `model.attention`; a monotonic alignment reads `chunk` (MoChA's w; plain
      monotonic attention ignores it), `energy_bias` (r's initial value), `sigmoid_noise`
      (σ_n while training), `expectation` (the module docstring), and MoChA's chunk
      `normalizer` and `entmax_alpha`.
  """

  config: "AttentionConfig"

  stateful = True  # carries α_{i−1} (expected) or t_{i−1} (hard) between steps
  chunk_energy = False  # whether it needs a second, chunk score

  def setup(self):
    self.r = self.param("r", nn.initializers.constant(self.config.energy_bias), ())

  @staticmethod
  def initial(mask: jax.Array, hard: bool) -> jax.Array:
    """t₀ = 0 `[batch]` (hard) or α₀ one-hot at the first position `[batch, src_len]`
    (zeros for an empty source)."""
    if hard:
      return jnp.zeros(mask.shape[:1], jnp.int32)
    return jnp.where(mask, jax.nn.one_hot(0, mask.shape[1], dtype=jnp.float32), 0.0)

  def normalize(self, energies: jax.Array, mask: jax.Array) -> jax.Array:
    return NORMALIZERS.get(self.config.normalizer)(energies, mask, self.config.entmax_alpha)

  def __call__(
    self,
    score: Score,
    query: jax.Array,
    memory: Memory,
    previous: jax.Array,
    train: bool = False,
    chunk_score: Score | None = None,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Attends from `[batch, q, query_size]` queries, one target step after another.

    Args:
      previous: α_{i−1} `[batch, src_len]` float32 (expected) or t_{i−1} `[batch]` int32
        (hard) before the first query.
      train: add the pre-sigmoid noise (expected only).
      chunk_score: MoChA's chunk energy.

    Returns:
      context `[batch, q, hidden]`, weights `[batch, q, src_len]` and the state after the
      last query.
    """
    if jnp.issubdtype(previous.dtype, jnp.integer):
      return self._hard(score, query, memory, previous, chunk_score)
    return self._expected(score, query, memory, previous, train, chunk_score)

  def _expected(self, score, query, memory, previous, train, chunk_score):
    mask = memory.mask[:, None, :]
    energies = score.compare(query, memory.keys).astype(jnp.float32) + self.r
    if train and self.config.sigmoid_noise:
      noise = jax.random.normal(self.make_rng("dropout"), energies.shape, energies.dtype)
      energies += self.config.sigmoid_noise * noise
    p = jnp.where(mask, jax.nn.sigmoid(energies), 0.0)
    if self.config.expectation == "parallel":  # what depends on p only, for every step at once
      per_step, step = _parallel_factors(p), _parallel_step
    else:
      per_step, step = p, _recursive_step

    def advance(alpha, inputs):
      alpha = step(inputs, alpha)
      return alpha, alpha

    swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    last, alphas = jax.lax.scan(advance, previous, jax.tree.map(swap, per_step))
    weights = swap(alphas)
    if self.chunk_energy:
      chunk = chunk_score.compare(query, memory.chunk_keys)
      weights = chunkwise(weights, chunk, mask, self.config.chunk, self.normalize)
    weights = weights.astype(memory.values.dtype)
    return _context(weights, memory.values), weights, last

  def _hard(self, score, query, memory, previous, chunk_score):
    lengths = memory.mask.sum(axis=-1).astype(jnp.int32)
    src_len = memory.mask.shape[1]

    def attend(position, q):  # one step from q `[batch, query_size]`
      q = q[:, None, :]

      def energy(index):
        keys = _gather(memory.keys, index[:, None, :])
        return score.compare(q, keys)[:, 0].astype(jnp.float32) + self.r

      chosen = first_firing(energy, position, lengths, src_len)
      if self.chunk_energy:
        index = chosen[:, None] + jnp.arange(1 - self.config.chunk, 1)
        # Nothing once stopped (chosen = src_len), even where the chunk would reach back
        # into the sentence.
        real = (index >= 0) & (index < lengths[:, None]) & (chosen < lengths)[:, None]
        safe = jnp.clip(index, 0, src_len - 1)[:, None]  # [batch, 1, w]
        chunk = chunk_score.compare(q, _gather(memory.chunk_keys, safe))
        weights = self.normalize(chunk, real[:, None]).astype(memory.values.dtype)
        context = _context(weights, _gather(memory.values, safe))[:, 0]
        row = _scatter(weights, safe, src_len)[:, 0]
      else:
        picked = (chosen < lengths).astype(memory.values.dtype)
        safe = jnp.minimum(chosen, src_len - 1)[:, None, None]
        context = _gather(memory.values, safe)[:, 0, 0] * picked[:, None]
        row = jax.nn.one_hot(chosen, src_len, dtype=memory.values.dtype)
      return chosen, (context, row)

    last, (contexts, rows) = jax.lax.scan(attend, previous, jnp.swapaxes(query, 0, 1))
    return jnp.swapaxes(contexts, 0, 1), jnp.swapaxes(rows, 0, 1), last


ALIGNMENTS.register("monotonic")(Monotonic)


@ALIGNMENTS.register("mocha")
class MoChA(Monotonic):
  """Chiu & Raffel 2018's monotonic chunkwise attention (the module docstring)."""

  chunk_energy = True
