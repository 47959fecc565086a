"""Score functions `score(h_t, h̄_s)`: how well a query matches each source position.

Each score is a linen module with two methods:
  * `prepare(keys)`: work that depends only on the source, done once per sentence
    (e.g. `W_a h̄_s` for `general`), not at every decoder step;
  * `__call__(query, prepared)`: energies for every source position.
Queries may carry extra leading axes (`[batch, tgt_len, dim]`), so one call scores every
target step at once when the queries are known in advance (teacher forcing without
input feeding).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.errors import ConfigError
from attn_research.registry import Registry

SCORES: Registry[type[nn.Module]] = Registry("score function", "model.attention.score")


def _dot(query: jax.Array, keys: jax.Array) -> jax.Array:
  """`[batch, ..., dim] · [batch, src_len, dim] → [batch, ..., src_len]`."""
  batch, *middle, dim = query.shape
  flat = query.reshape(batch, -1, dim)
  return jnp.einsum("bqd,bsd->bqs", flat, keys).reshape(batch, *middle, keys.shape[1])


@SCORES.register("dot")
class DotScore(nn.Module):
  """Luong's `dot`: `h_tᵀ h̄_s` (query and key sizes must match).

  Attributes:
    query_size: size of `h_t`, checked against the key size.
  """

  query_size: int

  def prepare(self, keys: jax.Array) -> jax.Array:
    if keys.shape[-1] != self.query_size:
      raise ConfigError(
        f"The dot score needs equal query and key sizes, got {self.query_size} and "
        f"{keys.shape[-1]}; use model.attention.score=general to learn a projection."
      )
    return keys

  def __call__(self, query: jax.Array, prepared: jax.Array) -> jax.Array:
    return _dot(query, prepared)


@SCORES.register("general")
class GeneralScore(nn.Module):
  """Luong's `general`: `h_tᵀ W_a h̄_s`, with `W_a h̄_s` computed once per source.

  Attributes:
    query_size: size of `h_t`; `W_a` is `[query_size, key_size]`.
  """

  query_size: int

  def setup(self):
    # Dense computes `h̄_s @ kernel`, so its kernel is W_aᵀ: `[key_size, query_size]`.
    self.w_a = nn.Dense(self.query_size, use_bias=False, name="w_a")

  def prepare(self, keys: jax.Array) -> jax.Array:
    """`[batch, src_len, key_size] → [batch, src_len, query_size]` (W_a h̄_s)."""
    return self.w_a(keys)

  def __call__(self, query: jax.Array, prepared: jax.Array) -> jax.Array:
    return _dot(query, prepared)
