"""The attention layer: a score function and an alignment, chosen by config strings."""

import dataclasses

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from attn_research.attention.alignments import ALIGNMENTS
from attn_research.attention.coverage import COVERAGES, NO_COVERAGE
from attn_research.attention.memory import Memory
from attn_research.attention.monotonic import EXPECTATIONS
from attn_research.attention.normalizers import NORMALIZERS
from attn_research.attention.scores import INITS, SCORES
from attn_research.config import fields
from attn_research.config.fields import NON_NEGATIVE, POSITIVE, Bool, Choice, Float, Int, field
from attn_research.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
  """`model.attention`: the score, the alignment and their options. The attention layer
  hands the whole section to each part it builds, which reads the keys it needs."""

  score: str = field(Choice(names=SCORES), "general", "see `python -m experiments.variants`")
  alignment: str = field(
    Choice(names=ALIGNMENTS), "global", "global | local_m | local_p | monotonic | mocha"
  )
  window: int = field(NON_NEGATIVE, 10, "D of local alignments (Luong: 10)")
  size: int = field(
    Int(low=0, note="0: the query size"),
    0,
    "N of concat/additive/normed_additive/mul scores and local-p; 0 = the query size",
  )
  init: str = field(
    Choice(names=INITS), "paper", "paper (each score as published) | default (LeCun)"
  )
  max_source_length: int = field(
    Int(low=0, note="0: the largest source bucket"),
    0,
    "positions the location score addresses; 0 = the largest source bucket",
  )
  sigma: float = field(
    Float(low=0, note="0: window / 2, Luong's"), 0.0, "local_p: Gaussian σ (Eq. 10); 0 = window / 2"
  )
  normalizer: str = field(
    Choice(names=NORMALIZERS), "softmax", "softmax | sparsemax | entmax15 | entmax"
  )
  entmax_alpha: float = field(
    Float(low=1, low_open=True, note="2: sparsemax"), 1.5, "α of normalizer=entmax (bisection)"
  )
  heads: int = field(POSITIVE, 1, "multi-head: H chunks of the compared vectors and values")
  coverage: str = field(
    Choice(names=(NO_COVERAGE, *COVERAGES)),
    NO_COVERAGE,
    "none | see (See 2017) | tu_linguistic | tu_nn (Tu 2016); needs a score with a tanh layer",
  )
  coverage_size: int = field(POSITIVE, 10, "units of the tu_nn coverage (Tu's 10)")
  chunk: int = field(POSITIVE, 2, "mocha: the chunk width w")
  energy_bias: float = field(
    Float(), -1.0, "monotonic, mocha: r's initial value (Lingvo's; Raffel suggests -4)"
  )
  sigmoid_noise: float = field(
    Float(low=0), 1.0, "monotonic, mocha: σ of the pre-sigmoid noise while training"
  )
  expectation: str = field(
    Choice(names=EXPECTATIONS),
    "recursive",
    "monotonic, mocha: recursive (exact) | parallel (the paper's cumulative products, which "
    "lose the mass past 1e-10 of Π(1 − p))",
  )
  head_projection: bool = field(
    Bool(), False, "project keys, values, query and context around the heads (Sockeye's mhdot)"
  )

  @classmethod
  def from_config(
    cls, attention: ml_collections.ConfigDict, longest_source: int
  ) -> "AttentionConfig":
    """The `model.attention` section, `resolved`."""
    return fields.parse(cls, attention, "model.attention.").resolved(longest_source)

  def resolved(self, longest_source: int) -> "AttentionConfig":
    """This config checked across its keys, `max_source_length` 0 resolved to
    `longest_source` (the data's largest source bucket, the `location` score's reach).

    Raises:
      ConfigError: a positive `max_source_length` shorter than `longest_source`, which
        would refuse the longest batches only once training reaches them; local-p with
        a Gaussian of width 0; coverage with a score that has no tanh layer to add it to;
        head projection with the `location` score, which reads no keys; a monotonic
        alignment with several heads, head projection, coverage, or (plain `monotonic`,
        which normalises nothing) a normaliser other than softmax.
    """
    config = self
    if 0 < config.max_source_length < longest_source:
      raise ConfigError(
        f"model.attention.max_source_length={config.max_source_length} is shorter than the "
        f"largest source bucket ({longest_source}); raise it or set 0 to use the bucket."
      )
    if config.alignment == "local_p" and not (config.sigma or config.window):
      raise ConfigError(
        "model.attention.alignment='local_p' with model.attention.window=0 and sigma=0 has "
        "a Gaussian of width 0; set model.attention.window ≥ 1 or model.attention.sigma > 0."
      )
    if config.coverage != NO_COVERAGE and not SCORES.get(config.score).accepts_coverage:
      accepting = ", ".join(name for name in SCORES if SCORES.get(name).accepts_coverage)
      raise ConfigError(
        f"model.attention.coverage={config.coverage!r} enters the score inside its tanh "
        f"layer, which model.attention.score={config.score!r} has not; use a score among "
        f"{accepting} or coverage='none'."
      )
    if config.head_projection and config.score == "location":
      raise ConfigError(
        "model.attention.head_projection=True projects keys that model.attention.score="
        "'location' does not read; use another score or head_projection=False."
      )
    if config.monotonic:
      for key, value, plain in (
        ("heads", config.heads, 1),
        ("head_projection", config.head_projection, False),
        ("coverage", config.coverage, NO_COVERAGE),
        (
          "normalizer",
          config.normalizer if config.alignment == "monotonic" else "softmax",
          "softmax",
        ),
      ):
        if value != plain:
          raise ConfigError(
            f"model.attention.alignment={config.alignment!r} attends to one position (or one "
            f"chunk) per step and does not take model.attention.{key}={value!r}; set "
            f"model.attention.{key}={plain!r}."
          )
    return dataclasses.replace(config, max_source_length=config.max_source_length or longest_source)

  def validate(self, hidden_size: int) -> None:
    """Raises a one-line `ConfigError` when the heads do not divide the sizes they split:
    the values (`hidden_size`) and the compared vectors (the inner size N of projected
    scores, else the query)."""
    for name, size in (("model.encoder.hidden_size", hidden_size), ("the inner size", self.size)):
      if size % self.heads:
        raise ConfigError(
          f"model.attention.heads={self.heads} must divide {name} ({size}); choose heads "
          f"among {', '.join(str(h) for h in range(1, size + 1) if size % h == 0)}."
        )

  @property
  def covered(self) -> bool:
    return self.coverage != NO_COVERAGE

  @property
  def monotonic(self) -> bool:
    """Whether the alignment carries a monotonic state (`monotonic`, `mocha`)."""
    return getattr(ALIGNMENTS.get(self.alignment), "stateful", False)


@flax.struct.dataclass
class AttentionState:
  """What an attention carries from one decoder step to the next; beam search reorders
  it with the rest of the decoder state.

  Attributes:
    coverage: C_{t−1} `[batch, src_len, units]` of a coverage model.
    alignment: α_{t−1} `[batch, src_len]`, a monotonic alignment's expected attention
      (training and teacher-forced evaluation).
    position: t_{t−1} `[batch]` int32, the hard monotonic process's position
      (decoding); the padded source length once it has stopped.
  """

  coverage: jax.Array | None = None
  alignment: jax.Array | None = None
  position: jax.Array | None = None


class Attention(nn.Module):
  """Context `c_t = Σ_s a_t(s) h̄_s` with `a_t` from the chosen score and alignment.

  With `head_projection` it is Sockeye 1.x's `MultiHeadDotAttention` (`mhdot`) around any
  score: keys and values `[K; V] = W_s h̄ + b_s` (once per source), the query
  `q' = W_q q + b_q`, the score and alignment on q' and K (local-p predicts p_t from q'
  too), each head's context over its chunk of V, and the output `W_o [c_1; …; c_H] + b_o`,
  every projection d = `query_size` wide like the model's encoder states.

  Attributes:
    config: score, alignment and their options.
    query_size: size of the decoder state used as the query.
  """

  config: AttentionConfig
  query_size: int

  def setup(self):
    c = self.config
    self.score_fn = SCORES.get(c.score)(c, self.query_size, c.heads, name="score")
    alignment = ALIGNMENTS.get(c.alignment)
    self.align_fn = alignment(c, name="alignment")
    if getattr(alignment, "chunk_energy", False):  # MoChA's: a second score of the same kind
      self.chunk_fn = SCORES.get(c.score)(c, self.query_size, name="chunk_score")
    if c.covered:
      self.coverage_fn = COVERAGES.get(c.coverage)(c, name="coverage")
    if c.head_projection:
      # init="paper": Sockeye's default `--weight-init xavier --weight-init-scale 3
      # --weight-init-xavier-factor-type avg`, which is Glorot uniform; biases start at 0.
      init = (
        nn.initializers.xavier_uniform() if c.init == "paper" else nn.initializers.lecun_normal()
      )
      d = self.query_size
      self.source_projection = nn.Dense(2 * d, kernel_init=init, name="source_projection")
      self.query_projection = nn.Dense(d, kernel_init=init, name="query_projection")
      self.output_projection = nn.Dense(d, kernel_init=init, name="output_projection")

  def prepare(self, values: jax.Array, mask: jax.Array) -> Memory:
    """Precomputes the per-source part of the score, once per source batch.

    Under head projection the memory holds V `[batch, src_len, hidden]` as its values and
    the score's preparation of K; coverage still reads the encoder states (Tu's h̄_j).

    Args:
      values: `[batch, src_len, hidden]` encoder states.
      mask: `[batch, src_len]` bool, True on real positions.
    """
    covered = self.coverage_fn.prepare(values, mask) if self.config.covered else None
    keys = values
    if self.config.head_projection:
      if values.shape[-1] != self.query_size:
        raise ConfigError(
          f"model.attention.head_projection=True projects to the query size ({self.query_size}),"
          f" which the encoder states must share, got {values.shape[-1]}; attend from "
          f"queries of {values.shape[-1]} or set model.attention.head_projection=False."
        )
      keys, values = jnp.split(self.source_projection(values), 2, axis=-1)
    chunk_keys = self.chunk_fn.prepare(keys) if hasattr(self, "chunk_fn") else None
    keys = self.score_fn.prepare(keys)
    return Memory(values=values, keys=keys, mask=mask, coverage=covered, chunk_keys=chunk_keys)

  def initial_state(self, memory: Memory, hard: bool = False) -> AttentionState | None:
    """The state before the first step: C₀ of a coverage model; α₀ (or, `hard`, the
    position t₀) of a monotonic alignment; None when the attention carries nothing."""
    c = self.config
    if not (c.covered or c.monotonic):
      return None
    coverage = self.coverage_fn.initial(memory.mask) if c.covered else None
    start = self.align_fn.initial(memory.mask, hard) if c.monotonic else None
    if hard:
      return AttentionState(coverage=coverage, position=start)
    return AttentionState(coverage=coverage, alignment=start)

  def __call__(
    self,
    query: jax.Array,
    memory: Memory,
    positions: jax.Array | int = 0,
    state: AttentionState | None = None,
    train: bool = False,
  ) -> tuple[jax.Array, jax.Array, AttentionState | None]:
    """Attends from `[batch, ..., query_size]` queries.

    Args:
      query: one query per decoder step (`[batch, query_size]`) or several
        (`[batch, tgt_len, query_size]`, consecutive steps); one per step under coverage.
      memory: from `prepare`.
      positions: 0-based target step of each query, broadcastable to `query.shape[:-1]`
        (read by local-m).
      state: from `initial_state` or the previous step (None: the first step's, expected).
      train: whether training (monotonic alignments add their pre-sigmoid noise).

    Returns:
      context `[batch, ..., hidden]`, weights `[batch, ..., src_len]` (exactly 0 on
      padding and outside a local window; a fully padded source gives zero weights and a
      zero context, b_o under head projection) and the state after the last query (None
      when it carries nothing).
    """
    batch, *middle, size = query.shape
    flat = query.reshape(batch, -1, size)
    if self.config.head_projection:  # q'; a coverage update below still reads the query q
      flat = self.query_projection(flat)
    if state is None:
      state = self.initial_state(memory)
    if self.config.monotonic:
      hard = state.position is not None
      previous = state.position if hard else state.alignment
      chunk_fn = getattr(self, "chunk_fn", None)
      context, weights, last = self.align_fn(self.score_fn, flat, memory, previous, train, chunk_fn)
      state = state.replace(**{"position" if hard else "alignment": last})
    else:
      pos = jnp.broadcast_to(jnp.asarray(positions, jnp.int32), query.shape[:-1])
      attended = memory
      if self.config.covered:
        if middle:
          raise ValueError("Coverage attends from one query per decoder step: [batch, query_size].")
        attended = memory.replace(keys=self.score_fn.cover(memory.keys, state.coverage))
      context, weights = self.align_fn(self.score_fn, flat, attended, pos.reshape(batch, -1))
    if self.config.head_projection:  # W_o [c_1; …; c_H] + b_o: mixes the heads' contexts
      context = self.output_projection(context)
    src_len = memory.mask.shape[1]
    weights = weights.reshape(batch, *middle, src_len)
    if self.config.covered:
      update = self.coverage_fn.update(state.coverage, weights, query, memory.coverage, memory.mask)
      state = state.replace(coverage=update)
    return context.reshape(batch, *middle, -1), weights, state
