"""Score functions `score(h_t, h̄_s)`: how well a query matches each source position.

Every score splits its work in two:
  * `prepare(keys)`: everything that depends only on the source, once per sentence
    (`W_a h̄_s` for `general`, `U_a h̄_s` for `additive`, …). The result has leading axes
    `[batch, src_len]`, one entry per source position, so local alignments can gather
    the 2D+1 positions of their window from it.
  * `compare(query, prepared)`: energies. `query` is `[batch, num_queries, query_size]`
    (one query per decoder step, or every target step at once); `prepared` is either the
    full `[batch, src_len, …]` (global) or a gathered window `[batch, num_queries,
    width, …]` (local). Returns `[batch, num_queries, src_len or width]`.

Initialisation follows the papers where they say (`initialization="paper"`): Luong et al. 2015
draw every parameter from U(−0.1, 0.1); Bahdanau et al. 2015 (appendix B.2) draw W_a and
U_a from N(0, 0.001²) and set v_a to 0. `initialization="default"` uses Flax's LeCun-normal.
"""

import math
from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.errors import ConfigError
from attn_research.registry import Registry

if TYPE_CHECKING:
  from attn_research.attention.attention import AttentionConfig

SCORES: Registry[type["Score"]] = Registry("score function", "model.attention.score")
INITS = ("paper", "default")


def luong_uniform(key, shape, dtype=jnp.float32):
  """Luong et al. 2015 §4.1: parameters uniform in [−0.1, 0.1]."""
  return jax.random.uniform(key, shape, dtype, -0.1, 0.1)


def bahdanau_normal(key, shape, dtype=jnp.float32):
  """Bahdanau et al. 2015 appendix B.2: W_a and U_a from N(0, 0.001²)."""
  return 0.001 * jax.random.normal(key, shape, dtype)


def split_heads(x: jax.Array, heads: int) -> jax.Array:
  """`[..., d]` → `[..., heads, d / heads]`."""
  return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def dot(query: jax.Array, keys: jax.Array, heads: int = 1) -> jax.Array:
  """`[b, q, d]` · full `[b, s, d]` or windowed `[b, q, w, d]` keys → `[b, q, s|w]`, or
  per head of d / H dimensions `[b, q, H, s|w]`."""
  full = keys.ndim == 3
  if heads == 1:
    return jnp.einsum("bqd,bsd->bqs" if full else "bqd,bqwd->bqw", query, keys)
  query, keys = split_heads(query, heads), split_heads(keys, heads)
  return jnp.einsum("bqhd,bshd->bqhs" if full else "bqhd,bqwhd->bqhw", query, keys)


def add(query: jax.Array, keys: jax.Array) -> jax.Array:
  """`[b, q, n]` + full `[b, s, n]` or windowed `[b, q, w, n]` → `[b, q, s|w, n]`."""
  return query[:, :, None, :] + (keys[:, None] if keys.ndim == 3 else keys)


def project(features: jax.Array, v: jax.Array, heads: int = 1) -> jax.Array:
  """`v_aᵀ tanh(…)`: `[b, q, s|w, n]` features · v `[n]` → `[b, q, s|w]`, or per head
  (chunks of n / H units and of v) `[b, q, H, s|w]`."""
  if heads == 1:
    return features @ v
  return jnp.einsum("bqshn,hn->bqhs", split_heads(features, heads), split_heads(v, heads))


class Score(nn.Module):
  """Base of the score functions.

  Attributes:
    config: `model.attention`; a score reads `size` (the inner size N of `concat`,
      `additive`, `normed_additive` and `mul`; 0 means `query_size`), `init` and
      `max_source_length` (the longest source `location` addresses).
    query_size: size of the query h_t (or s_{t−1}).
    heads: H of multi-head attention: the compared vectors (the query and keys, or the N
      units inside the tanh and v_a) are split into H chunks, one energy per chunk.
  """

  config: "AttentionConfig"
  query_size: int
  heads: int = 1

  # Whether a coverage vector can enter the score: only inside a tanh layer over the keys.
  accepts_coverage = False
  coverage_init = staticmethod(luong_uniform)

  @property
  def inner_size(self) -> int:
    return self.config.size or self.query_size

  def initializer(self, paper, vector: bool = False):
    """`paper` under initialization="paper", else LeCun-normal (N(0, 1/N) for a vector)."""
    if self.config.init == "paper":
      return paper
    if vector:
      return nn.initializers.normal(1.0 / math.sqrt(self.inner_size))
    return nn.initializers.lecun_normal()

  def dense(self, features: int, name: str, paper=luong_uniform) -> nn.Dense:
    return nn.Dense(features, use_bias=False, kernel_init=self.initializer(paper), name=name)

  def prepare(self, keys: jax.Array):
    return keys

  def cover(self, prepared: jax.Array, coverage: jax.Array) -> jax.Array:
    """The prepared keys `[batch, src_len, n]` plus V_c C `[batch, src_len, n]` from the
    coverage vector `[batch, src_len, coverage units]`: the term inside the tanh of Tu et
    al. 2016 (V_a C_{i−1,j}) and See et al. 2017 (w_c c_i^t)."""
    return prepared + self.w_c(coverage.astype(prepared.dtype))

  def compare(self, query: jax.Array, prepared) -> jax.Array:
    raise NotImplementedError


class _Tanh(Score):
  """Scores `v_aᵀ tanh(W_q q + keys)`: they accept a coverage vector."""

  accepts_coverage = True

  def setup(self):
    self.w_c = self.dense(self.inner_size, "w_c", self.coverage_init)


@SCORES.register("dot")
class Dot(Score):
  """Luong's `dot`: `h_tᵀ h̄_s` (query and key sizes must match)."""

  def prepare(self, keys: jax.Array) -> jax.Array:
    if keys.shape[-1] != self.query_size:
      raise ConfigError(
        f"The dot score needs equal query and key sizes, got {self.query_size} and "
        f"{keys.shape[-1]}; use model.attention.score=general to learn a projection."
      )
    return keys

  def compare(self, query, prepared):
    return dot(query, prepared, self.heads)


@SCORES.register("scaled_dot")
class ScaledDot(Dot):
  """`h_tᵀ h̄_s / √d` (Vaswani et al. 2017's scaling on Luong's dot; d per head)."""

  def compare(self, query, prepared):
    return dot(query, prepared, self.heads) / math.sqrt(self.query_size // self.heads)


@SCORES.register("general")
class General(Score):
  """Luong's `general`: `h_tᵀ W_a h̄_s`, with `W_a h̄_s` computed once per source."""

  def setup(self):
    # Dense computes `h̄_s @ kernel`, so its kernel is W_aᵀ: `[key_size, query_size]`.
    self.w_a = self.dense(self.query_size, "w_a")

  def prepare(self, keys):
    return self.w_a(keys)

  def compare(self, query, prepared):
    return dot(query, prepared, self.heads)


@SCORES.register("scaled_general")
class ScaledGeneral(General):
  """tensorflow/nmt's scaled Luong: `g · h_tᵀ W_a h̄_s`, g a learned scalar starting at 1."""

  def setup(self):
    super().setup()
    self.g = self.param("g", nn.initializers.ones, ())

  def compare(self, query, prepared):
    return self.g * dot(query, prepared, self.heads)


@SCORES.register("concat")
class Concat(_Tanh):
  """Luong's `concat`: `v_aᵀ tanh(W_a [h_t; h̄_s])`, with W_a = [W_q, W_k] split so that
  `W_k h̄_s` is computed once per source."""

  def setup(self):
    super().setup()
    self.w_q = self.dense(self.inner_size, "w_q")
    self.w_k = self.dense(self.inner_size, "w_k")
    self.v_a = self.param("v_a", self.initializer(luong_uniform, True), (self.inner_size,))

  def prepare(self, keys):
    return self.w_k(keys)

  def compare(self, query, prepared):
    return project(jnp.tanh(add(self.w_q(query), prepared)), self.v_a, self.heads)


@SCORES.register("additive")
class Additive(_Tanh):
  """Bahdanau's `v_aᵀ tanh(W_a s + U_a h̄_s)`, `U_a h̄_s` once per source; W_a, U_a (and a
  coverage's V_c) from N(0, 0.001²) and v_a = 0 (Bahdanau et al. 2015, appendix B.2)."""

  coverage_init = staticmethod(bahdanau_normal)

  def setup(self):
    super().setup()
    self.w_a = self.dense(self.inner_size, "w_a", bahdanau_normal)
    self.u_a = self.dense(self.inner_size, "u_a", bahdanau_normal)
    self.v_a = self.param("v_a", self.initializer(nn.initializers.zeros, True), (self.inner_size,))

  def prepare(self, keys):
    return self.u_a(keys)

  def compare(self, query, prepared):
    return project(jnp.tanh(add(self.w_a(query), prepared)), self.v_a, self.heads)


@SCORES.register("normed_additive")
class NormedAdditive(_Tanh):
  """tensorflow/nmt's normed Bahdanau (Salimans & Kingma 2016 weight normalisation):
  `(g · v / ‖v‖)ᵀ tanh(W q + U h̄_s + b)`, g starting at √(1/N), b at 0, the rest
  U(−0.1, 0.1) as tensorflow/nmt's standard `init_weight`."""

  def setup(self):
    super().setup()
    self.w_a = self.dense(self.inner_size, "w_a")
    self.u_a = self.dense(self.inner_size, "u_a")
    self.v = self.param("v", self.initializer(luong_uniform, True), (self.inner_size,))
    self.g = self.param("g", nn.initializers.constant(math.sqrt(1.0 / self.inner_size)), ())
    self.b = self.param("b", nn.initializers.zeros, (self.inner_size,))

  def prepare(self, keys):
    return self.u_a(keys)

  def compare(self, query, prepared):
    normed_v = self.g * self.v / jnp.linalg.norm(self.v)
    return project(jnp.tanh(add(self.w_a(query), prepared) + self.b), normed_v, self.heads)


@SCORES.register("mul")
class Mul(Score):
  """Britz et al. 2017's multiplicative Mul-N: `(W_q h_t)ᵀ (W_k h̄_s)`, both sides
  projected to N = `model.attention.size`."""

  def setup(self):
    self.w_q = self.dense(self.inner_size, "w_q")
    self.w_k = self.dense(self.inner_size, "w_k")

  def prepare(self, keys):
    return self.w_k(keys)

  def compare(self, query, prepared):
    return dot(self.w_q(query), prepared, self.heads)


@SCORES.register("cosine")
class Cosine(Dot):
  """Content-based cosine similarity `h_tᵀ h̄_s / (‖h_t‖ ‖h̄_s‖)` (Graves et al. 2014), of
  each head's chunks under multi-head attention."""

  eps: float = 1e-8

  def _normalise(self, x):
    # sqrt(|x|² + ε) keeps zero vectors (padding) and their gradients finite.
    if self.heads > 1:
      return self._normalise_rows(split_heads(x, self.heads)).reshape(x.shape)
    return self._normalise_rows(x)

  def _normalise_rows(self, x):
    return x / jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + self.eps)

  def prepare(self, keys):
    return super().prepare(self._normalise(keys))

  def compare(self, query, prepared):
    return dot(self._normalise(query), prepared, self.heads)


@SCORES.register("location")
class Location(Score):
  """Luong's location-based `a_t = softmax(W_a h_t)` over source positions.

  Row s of W_a scores position s whatever the source says, so `prepare` returns the
  rows of the first src_len positions as per-position "keys" and the score is their
  dot product with h_t: a local window gathers its rows like any other keys.
  """

  def setup(self):
    self.w_a = self.param(
      "w_a", self.initializer(luong_uniform), (self.query_size, self.config.max_source_length)
    )

  def prepare(self, keys):
    batch, src_len = keys.shape[:2]
    if src_len > self.config.max_source_length:
      raise ConfigError(
        f"The location score addresses {self.config.max_source_length} source positions, the batch has "
        f"{src_len}; raise model.attention.max_source_length."
      )
    rows = self.w_a[:, :src_len].T.astype(keys.dtype)
    return jnp.broadcast_to(rows, (batch, src_len, self.query_size))

  def compare(self, query, prepared):
    return dot(query, prepared, self.heads)
