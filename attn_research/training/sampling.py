"""Scheduled sampling (Bengio et al. 2015): at training step i, each target position feeds
the gold previous token with probability ε_i and the model's own previous prediction (the
argmax of its previous step) otherwise; ε_i decays from 1 as training goes on.

The decays are the paper's three, selected by `train.scheduled_sampling`:
  linear            ε_i = max(ε_min, k − c·i)
  exponential       ε_i = k^i            (k < 1)
  inverse_sigmoid   ε_i = k / (k + exp(i / k))   (k ≥ 1)
"""

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from attn_research.registry import Registry

# decay name → ε(step, sampling) as a traced float32 scalar
DECAYS: Registry[Callable[[jax.Array, "ScheduledSampling"], jax.Array]] = Registry(
  "scheduled-sampling decay", "train.scheduled_sampling"
)


@DECAYS.register("none")
def _none(step, sampling):
  del step, sampling
  return jnp.float32(1.0)


@DECAYS.register("linear")
def _linear(step, sampling):
  return jnp.maximum(sampling.minimum, sampling.k - sampling.c * step).astype(jnp.float32)


@DECAYS.register("exponential")
def _exponential(step, sampling):
  # exp(i · ln k) with ln k in float64: float32's pow loses 1e-4 relative by i = 5000.
  return jnp.exp(step.astype(jnp.float32) * jnp.float32(math.log(sampling.k)))


@DECAYS.register("inverse_sigmoid")
def _inverse_sigmoid(step, sampling):
  k = jnp.float32(sampling.k)
  return k / (k + jnp.exp(step.astype(jnp.float32) / k))


@dataclasses.dataclass(frozen=True)
class ScheduledSampling:
  """`decay` (a `DECAYS` name) with its constants: `k`, and linear's slope `c` and floor
  `minimum`."""

  decay: str = "none"
  k: float = 100.0
  c: float = 1e-3
  minimum: float = 0.0

  @property
  def enabled(self) -> bool:
    return self.decay != "none"

  def epsilon(self, step: jax.Array | int) -> jax.Array:
    """ε at optimizer step `step` (0-based): the probability of feeding the gold token."""
    return jnp.clip(DECAYS.get(self.decay)(jnp.asarray(step), self), 0.0, 1.0)

  def keep_gold(self, rng: jax.Array, step: jax.Array | int, shape: tuple[int, int]) -> jax.Array:
    """`[batch, tgt_len]` bool: where the gold previous token is fed (always at t = 0,
    whose input is <s>)."""
    keep = jax.random.uniform(rng, shape) < self.epsilon(step)
    return keep.at[:, 0].set(True)
