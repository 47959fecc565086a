"""Optimizers and learning-rate schedules, selected by `train.optimizer` / `train.schedule`."""

import ml_collections
import optax

from attn_research.registry import Registry

SCHEDULES: Registry = Registry("learning-rate schedule", "train.schedule")
OPTIMIZERS: Registry = Registry("optimizer", "train.optimizer")


@SCHEDULES.register("constant")
def constant(train: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then constant."""
  return optax.join_schedules(
    [
      optax.linear_schedule(0.0, train.learning_rate, train.warmup_steps),
      optax.constant_schedule(train.learning_rate),
    ],
    [train.warmup_steps],
  )


@SCHEDULES.register("cosine")
def cosine(train: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up, then cosine decay to 0 at `num_steps`."""
  return optax.warmup_cosine_decay_schedule(
    0.0, train.learning_rate, train.warmup_steps, max(train.num_steps, train.warmup_steps + 1)
  )


OPTIMIZERS.register("adam")(optax.adam)
OPTIMIZERS.register("sgd")(optax.sgd)


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Gradient clipping by global norm (`grad_clip` 0: none), then the chosen optimizer on
  the chosen schedule."""
  schedule = SCHEDULES.get(train.schedule)(train)
  # `clip_by_global_norm(0)` would zero every gradient. `identity` keeps the optimizer
  # state's structure, so a checkpoint restores whatever `grad_clip` is.
  clip = optax.clip_by_global_norm(train.grad_clip) if train.grad_clip > 0 else optax.identity()
  return optax.chain(clip, OPTIMIZERS.get(train.optimizer)(schedule))
