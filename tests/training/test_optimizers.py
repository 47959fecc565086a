"""Schedules and optimizers against NumPy references; the plan of steps and epochs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.training import experiment, optimizers
from attn_research.training.optimizers import StepPlan


def _train(**keys):
  config = experiment.defaults()
  for key, value in keys.items():
    setattr(config.train, key, value)
  return config.train


def _rates(schedule, num_steps: int) -> np.ndarray:
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(num_steps)))


def _halving_reference(num_steps, lr, warmup, start, every, factor):
  """Luong's recipe step by step: warm-up, then the rate of step s (0-based) halves at
  `start` and every `every` steps after."""
  rates = []
  for s in range(num_steps):
    if s < warmup:
      rates.append(lr * s / warmup)
      continue
    decays = 0 if s < start else (s - start) // every + 1
    rates.append(lr * factor**decays)
  return np.array(rates)


@pytest.mark.parametrize(
  "unit,start,every,warmup", [("epoch", 5, 1, 0), ("epoch", 1.5, 0.5, 4), ("step", 30, 7, 10)]
)
def test_halving_follows_luongs_recipe(unit, start, every, warmup):
  plan = StepPlan(num_steps=120, steps_per_epoch=10.0)
  train = _train(
    learning_rate=1.0,
    warmup_steps=warmup,
    schedule="halving",
    decay_unit=unit,
    decay_start=start,
    decay_every=every,
    decay_factor=0.5,
  )
  scale = 10 if unit == "epoch" else 1
  expected = _halving_reference(120, 1.0, warmup, start * scale, every * scale, 0.5)
  rates = _rates(optimizers.SCHEDULES.get("halving")(train, plan), 120)
  np.testing.assert_allclose(rates, expected, rtol=1e-6)
  if unit == "epoch" and start == 5:  # Luong's 10 epochs: lr 1 for five, then 1/2, …, 1/32
    epochs = rates[:100].reshape(10, 10)
    assert (epochs == epochs[:, :1]).all()
    np.testing.assert_allclose(epochs[:, 0], [1, 1, 1, 1, 1, 0.5, 0.25, 0.125, 0.0625, 0.03125])


def test_plateau_factor_scales_the_updates_and_survives_a_checkpoint_round_trip():
  train = _train(optimizer="sgd", schedule="plateau", warmup_steps=0, learning_rate=0.5)
  tx = optimizers.make_optimizer(train, StepPlan(10, 1.0))
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.asarray([1.0, -2.0, 0.5])}
  state = tx.init(params)
  updates, _ = tx.update(grads, state, params)
  np.testing.assert_allclose(updates["w"], [-0.5, 1.0, -0.25])
  state = optimizers.with_plateau_factor(state, 0.25)
  updates, state = tx.update(grads, state, params)
  np.testing.assert_allclose(updates["w"], np.array([-0.5, 1.0, -0.25]) * 0.25)
  leaves = jax.tree.leaves(state)
  assert any(leaf.shape == () and float(leaf) == 0.25 for leaf in leaves)  # kept in the state


def test_adadelta_and_adagrad_match_numpy():
  rng = np.random.default_rng(0)
  grads = rng.normal(size=(5, 4)).astype(np.float32)
  for name, keys in (
    ("adadelta", {"adadelta_rho": 0.95, "adadelta_eps": 1e-6, "learning_rate": 1.0}),
    ("adagrad", {"adagrad_init": 0.1, "learning_rate": 0.15}),
  ):
    train = _train(optimizer=name, schedule="constant", warmup_steps=0, grad_clip=0.0, **keys)
    tx = optimizers.make_optimizer(train, StepPlan(10, 1.0))
    params = jnp.zeros(4)
    state = tx.init(params)
    got = []
    for g in grads:
      updates, state = tx.update(jnp.asarray(g), state, params)
      got.append(np.asarray(updates))
    expected = []
    if name == "adadelta":  # Zeiler 2012, Algorithm 1
      rho, eps, eg2, edx2 = 0.95, 1e-6, np.zeros(4), np.zeros(4)
      for g in grads.astype(np.float64):
        eg2 = rho * eg2 + (1 - rho) * g**2
        dx = -np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx**2
        expected.append(dx)
    else:  # Duchi et al. 2011 with See et al.'s initial accumulator
      acc = np.full(4, 0.1)
      for g in grads.astype(np.float64):
        acc = acc + g**2
        expected.append(-0.15 * g / np.sqrt(acc + 1e-7))
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=2e-5, atol=1e-7)


def test_a_plan_of_epochs_rounds_up_to_whole_steps():
  plan = StepPlan.of(_train(num_epochs=2.5, accumulate_steps=2), batches_per_epoch=15)
  assert plan.steps_per_epoch == 7.5 and plan.num_steps == 19  # ⌈18.75⌉
  assert plan.epoch(15) == 2.0 and plan.steps(2, "epoch") == 15 and plan.steps(2, "step") == 2
  assert StepPlan.of(_train(num_epochs=2.0), batches_per_epoch=15).num_steps == 30
  assert StepPlan.of(_train(num_steps=40), batches_per_epoch=15).num_steps == 40
