import time

import jax
import jax.numpy as jnp
import pytest

from attn_research.training.clock import Clock


def test_compilation_inside_a_measured_block_counts_as_compile():
  clock = Clock()
  x = jnp.arange(5.0)
  fresh = jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)  # a function no test compiled before
  started = time.perf_counter()
  with clock.measure("train"):
    fresh(x).block_until_ready()
  elapsed = time.perf_counter() - started
  assert clock.seconds["compile"] > 0
  assert clock.seconds["train"] + clock.seconds["compile"] == pytest.approx(elapsed, abs=0.01)
  compilations = clock.as_dict()["compilations"]
  assert compilations >= 1
  compile_seconds = clock.seconds["compile"]
  with clock.measure("train"):  # compiled already
    fresh(x).block_until_ready()
  assert clock.as_dict()["compilations"] == compilations
  assert clock.seconds["compile"] == compile_seconds


def test_measure_and_resume_from_checkpointed_totals():
  clock = Clock()
  with clock.measure("eval"):
    time.sleep(0.01)
  assert 0.01 <= clock.seconds["eval"] < 1.0
  clock.record_step(((8, 12), (8, 12)))
  clock.record_step(((8, 12), (8, 12)))
  clock.record_step(((8, 20), (8, 12)))
  totals = clock.as_dict()
  assert set(totals) == {
    "train_seconds",
    "compile_seconds",
    "eval_seconds",
    "checkpoint_seconds",
    "wall_seconds",
    "compilations",
    "cache_hits",
    "train_shapes",
  }
  assert totals["train_shapes"] == 2
  resumed = Clock({**totals, "wall_seconds": 100.0, "compilations": 7})
  assert resumed.seconds == clock.seconds and resumed.wall_seconds >= 100.0
  assert resumed.as_dict()["compilations"] == 7
  assert resumed.as_dict()["train_shapes"] == 0  # a resumed process compiles its shapes again


def test_checkpoints_written_before_the_clock_read_as_zeros():
  old = Clock({"train_seconds": 12.5, "wall_seconds": 30.0, "train_tokens": 1000.0})
  assert old.seconds == pytest.approx(
    {"train": 12.5, "compile": 0.0, "eval": 0.0, "checkpoint": 0.0}
  )
