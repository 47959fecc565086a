"""Coverage models (`model.attention.coverage`): what each source position has received.

A coverage vector C `[batch, src_len, size]` is part of the decoder state: C₀ = 0, the
score at step t reads C_{t−1} inside its tanh (`v_aᵀ tanh(… + V_c C_{t−1,j})`, so only
scores with that layer accept it), and C_t is updated from the step's weights a_t.

  * `see`: See et al. 2017's coverage vector, the attention received so far,
    C_{t,j} = C_{t−1,j} + a_{t,j} (size 1; the score's V_c is their vector w_c).
  * `tu_linguistic`: Tu et al. 2016's linguistic coverage with fertility,
    C_{t,j} = C_{t−1,j} + a_{t,j} / Φ_j,  Φ_j = N σ(U_f h̄_j),  N = 2 (size 1).
  * `tu_nn`: Tu et al. 2016's neural coverage, a GRU per source position,
    C_{t,j} = GRU(C_{t−1,j}; a_{t,j}, h̄_j, q_t), of `model.attention.coverage_size`
    units (Tu's 10), exactly 0 on padding.

The query q_t is the decoder's attention query (for `bahdanau` s_{t−1}, as in Tu's code).
What depends on the source only (Φ, the GRU's input projection of h̄_j) is computed
once per sentence by `prepare`.
"""

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.attention.scores import bahdanau_normal, luong_uniform
from attn_research.registry import Registry

if TYPE_CHECKING:
  from attn_research.attention.attention import AttentionConfig

COVERAGES: Registry[type["Coverage"]] = Registry("coverage model", "model.attention.coverage")
NO_COVERAGE = "none"
MAX_FERTILITY = 2.0  # Tu et al. 2016's N (Sockeye's max_fertility default too)


class Coverage(nn.Module):
  """Base of the coverage models.

  Attributes:
    config: `model.attention`; a coverage model reads `init` and `coverage_size` (the
      units of `tu_nn`; the others have 1).
  """

  config: "AttentionConfig"

  @property
  def units(self) -> int:
    return 1

  def prepare(self, values: jax.Array, mask: jax.Array) -> jax.Array | None:
    """The per-source part of the update from `[batch, src_len, hidden]` states and their
    `[batch, src_len]` mask."""
    del values, mask
    return None

  def initial(self, mask: jax.Array) -> jax.Array:
    """C₀ = 0: `[batch, src_len, units]`, float32 whatever the computation dtype (a sum
    of a hundred bfloat16 weights would lose their last ones)."""
    return jnp.zeros((*mask.shape, self.units), jnp.float32)

  def update(self, coverage, weights, query, prepared, mask) -> jax.Array:
    """C_t from C_{t−1} `[batch, src_len, units]`, a_t `[batch, src_len]`, the query
    `[batch, query_size]`, `prepare`'s result and the source mask `[batch, src_len]`."""
    raise NotImplementedError


@COVERAGES.register("see")
class SeeCoverage(Coverage):
  """C_t = C_{t−1} + a_t (See et al. 2017, §2.3)."""

  def update(self, coverage, weights, query, prepared, mask):
    del query, prepared, mask
    return coverage + weights[..., None].astype(coverage.dtype)


@COVERAGES.register("tu_linguistic")
class TuLinguisticCoverage(Coverage):
  """C_t = C_{t−1} + a_t / Φ with fertility Φ_j = N σ(U_f h̄_j), N = 2 (Tu et al. 2016,
  Eq. 8); U_f without bias. `prepare` returns 1/Φ, 0 on padding."""

  def setup(self):
    init = luong_uniform if self.config.init == "paper" else nn.initializers.lecun_normal()
    self.u_f = nn.Dense(1, use_bias=False, kernel_init=init, name="u_f")

  def prepare(self, values, mask):
    fertility = MAX_FERTILITY * jax.nn.sigmoid(self.u_f(values))  # Φ: [batch, src_len, 1]
    # Padding may have Φ = 0 (σ underflows on any values there): divide by 1 instead.
    return jnp.where(mask[..., None], 1.0 / jnp.where(mask[..., None], fertility, 1.0), 0.0)

  def update(self, coverage, weights, query, prepared, mask):
    del query, mask
    return coverage + (weights[..., None] * prepared).astype(coverage.dtype)


@COVERAGES.register("tu_nn")
class TuNeuralCoverage(Coverage):
  """C_t = GRU(C_{t−1}; [a_t, h̄, q_t]) at every source position (Tu et al. 2016, Eq. 7),
  with the gates of a standard GRU:

    r = σ(x_r + U_r C),  z = σ(x_z + U_z C),  n = tanh(x_n + r ⊙ U_n C),
    C' = (1 − z) ⊙ n + z ⊙ C,   x = W_a a + W_h h̄ + W_q q + b.

  Under initialization="paper" the weights of a start at 0 and those of h̄ and q at
  N(0, 0.001²), as in Tu's code; the recurrent U is U(−0.1, 0.1), biases 0.
  """

  @property
  def units(self) -> int:
    return self.config.coverage_size

  def setup(self):
    def dense(paper, bias=False):
      init = paper if self.config.init == "paper" else nn.initializers.lecun_normal()
      return nn.Dense(3 * self.config.coverage_size, use_bias=bias, kernel_init=init)

    self.w_h = dense(bahdanau_normal, bias=True)
    self.w_a = dense(nn.initializers.zeros)
    self.w_q = dense(bahdanau_normal)
    self.u = dense(luong_uniform)

  def prepare(self, values, mask):
    del mask
    return self.w_h(values)  # [batch, src_len, 3·size]

  def update(self, coverage, weights, query, prepared, mask):
    x = prepared + self.w_a(weights[..., None].astype(prepared.dtype)) + self.w_q(query)[:, None]
    h = self.u(coverage)
    x_r, x_z, x_n = jnp.split(x, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h, 3, axis=-1)
    r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
    new = (1.0 - z) * jnp.tanh(x_n + r * h_n) + z * coverage
    return jnp.where(mask[..., None], new, 0.0).astype(coverage.dtype)
