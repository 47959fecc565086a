"""Optimizers and learning-rate schedules, selected by `train.optimizer` / `train.schedule`.

A schedule is `(train, plan) → optax.Schedule` (`plan`: the run's `StepPlan`, which maps
epochs to steps). `plateau` decays on validation results, which the host sees: its rate
is the warm-up schedule times a factor kept in the optimizer state (`plateau_factor`),
set by the trainer between steps.
"""

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from attn_research.registry import Registry

SCHEDULES: Registry = Registry("learning-rate schedule", "train.schedule")
OPTIMIZERS: Registry = Registry("optimizer", "train.optimizer")


@dataclasses.dataclass(frozen=True)
class StepPlan:
  """How long a run trains: `num_steps` optimizer steps, `steps_per_epoch` of them per pass
  over the training batches (the batch plan's batches per epoch ÷ `accumulate_steps`)."""

  num_steps: int
  steps_per_epoch: float

  @classmethod
  def of(cls, train: ml_collections.ConfigDict, batches_per_epoch: int) -> "StepPlan":
    """`train.num_epochs` epochs (rounded up to whole steps) when set, else `num_steps`."""
    per_epoch = batches_per_epoch / train.accumulate_steps
    if train.num_epochs > 0:
      return cls(max(1, math.ceil(train.num_epochs * per_epoch - 1e-9)), per_epoch)
    return cls(train.num_steps, per_epoch)

  def epoch(self, step: int) -> float:
    """Epochs completed after `step` optimizer steps."""
    return step / self.steps_per_epoch

  def steps(self, value: float, unit: str) -> float:
    """`value` steps, or `value` epochs in steps when `unit` is "epoch"."""
    return value * self.steps_per_epoch if unit == "epoch" else value


def _warmup_then(train: ml_collections.ConfigDict, after: optax.Schedule) -> optax.Schedule:
  """Linear warm-up from 0 to `learning_rate` over `warmup_steps`, then `after`."""
  if not train.warmup_steps:
    return after
  return optax.join_schedules(
    [optax.linear_schedule(0.0, train.learning_rate, train.warmup_steps), after],
    [train.warmup_steps],
  )


@SCHEDULES.register("constant")
def constant(train: ml_collections.ConfigDict, plan: StepPlan) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then constant."""
  del plan
  return _warmup_then(train, optax.constant_schedule(train.learning_rate))


@SCHEDULES.register("cosine")
def cosine(train: ml_collections.ConfigDict, plan: StepPlan) -> optax.Schedule:
  """Linear warm-up, then cosine decay to 0 at the run's last step."""
  return optax.warmup_cosine_decay_schedule(
    0.0, train.learning_rate, train.warmup_steps, max(plan.num_steps, train.warmup_steps + 1)
  )


@SCHEDULES.register("halving")
def halving(train: ml_collections.ConfigDict, plan: StepPlan) -> optax.Schedule:
  """Linear warm-up, then constant until `decay_start`, where the rate is multiplied by
  `decay_factor`, and again every `decay_every` after (both in `decay_unit`s): Luong et
  al.'s "after 5 epochs, we begin to halve the learning rate every epoch", OpenNMT-py's
  `start_decay_steps` / `decay_steps` / `learning_rate_decay`. Step s (counting from 0)
  trains at lr · factor^n, n = ⌊(s − start) / every⌋ + 1 once s ≥ start."""
  start = plan.steps(train.decay_start, train.decay_unit)
  every = plan.steps(train.decay_every, train.decay_unit)

  def rate(count):
    decays = jnp.where(count >= start, jnp.floor((count - start) / every) + 1, 0)
    return train.learning_rate * train.decay_factor**decays

  return _warmup_then(train, lambda count: rate(count + train.warmup_steps))


@SCHEDULES.register("plateau")
def plateau(train: ml_collections.ConfigDict, plan: StepPlan) -> optax.Schedule:
  """Linear warm-up to `learning_rate`; the trainer multiplies the rate by `decay_factor`
  each time `decay_metric` has not improved for `decay_patience` validations."""
  return constant(train, plan)


@OPTIMIZERS.register("adam")
def adam(learning_rate: optax.Schedule, train: ml_collections.ConfigDict):
  """Adam with optax's defaults (β = 0.9, 0.999; ε = 1e-8)."""
  del train
  return optax.adam(learning_rate)


@OPTIMIZERS.register("sgd")
def sgd(learning_rate: optax.Schedule, train: ml_collections.ConfigDict):
  """Plain SGD (Luong et al.: learning rate 1)."""
  del train
  return optax.sgd(learning_rate)


@OPTIMIZERS.register("adadelta")
def adadelta(learning_rate: optax.Schedule, train: ml_collections.ConfigDict):
  """Zeiler's Adadelta (Bahdanau et al.: ρ = 0.95, ε = 1e-6, learning rate 1)."""
  return optax.adadelta(learning_rate, rho=train.adadelta_rho, eps=train.adadelta_eps)


@OPTIMIZERS.register("adagrad")
def adagrad(learning_rate: optax.Schedule, train: ml_collections.ConfigDict):
  """Adagrad with its accumulator starting at `adagrad_init` (See et al.: 0.1)."""
  return optax.adagrad(learning_rate, initial_accumulator_value=train.adagrad_init, eps=1e-7)


class PlateauState(NamedTuple):
  factor: jax.Array  # [] float32: what `plateau` multiplies the updates by


def scale_by_plateau_factor() -> optax.GradientTransformation:
  """Multiplies the updates by a factor the host sets (`with_plateau_factor`): for the
  optimizers here, whose updates are linear in the learning rate, that is the rate."""

  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u: u * state.factor.astype(u.dtype), updates), state

  return optax.GradientTransformation(lambda _: PlateauState(jnp.ones([], jnp.float32)), update)


def with_plateau_factor(opt_state, factor: float):
  """`opt_state` with its `PlateauState` factor set to `factor` (same sharding)."""

  def replace(node):
    if isinstance(node, PlateauState):
      value = jnp.asarray(factor, jnp.float32)
      return PlateauState(jax.device_put(value, node.factor.sharding))
    return node

  return jax.tree.map(replace, opt_state, is_leaf=lambda n: isinstance(n, PlateauState))


def make_optimizer(
  train: ml_collections.ConfigDict, plan: StepPlan
) -> optax.GradientTransformation:
  """Gradient clipping by global norm (`grad_clip` 0: none), then the chosen optimizer on
  the chosen schedule (times the plateau factor for `plateau`)."""
  schedule = SCHEDULES.get(train.schedule)(train, plan)
  # `clip_by_global_norm(0)` would zero every gradient. `identity` keeps the optimizer
  # state's structure, so a checkpoint restores whatever `grad_clip` is.
  clip = optax.clip_by_global_norm(train.grad_clip) if train.grad_clip > 0 else optax.identity()
  chain = [clip, OPTIMIZERS.get(train.optimizer)(schedule, train)]
  if train.schedule == "plateau":
    chain.append(scale_by_plateau_factor())
  return optax.chain(*chain)
