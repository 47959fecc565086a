import time

import pytest

from attn_research.training.clock import Clock


def test_first_step_of_each_shape_counts_as_compilation():
  clock = Clock()
  assert clock.record_step(((8, 12), (8, 12)), 2.0)
  assert not clock.record_step(((8, 12), (8, 12)), 0.5)
  assert clock.record_step(((8, 20), (8, 12)), 1.5)
  assert not clock.record_step(((8, 12), (8, 12)), 0.25)
  assert clock.seconds["compile"] == 3.5 and clock.seconds["train"] == 0.75


def test_measure_and_resume_from_checkpointed_totals():
  clock = Clock()
  with clock.measure("eval"):
    time.sleep(0.01)
  assert 0.01 <= clock.seconds["eval"] < 1.0
  totals = clock.as_dict()
  assert set(totals) == {
    "train_seconds",
    "compile_seconds",
    "eval_seconds",
    "checkpoint_seconds",
    "wall_seconds",
  }
  resumed = Clock({**totals, "wall_seconds": 100.0})
  assert resumed.seconds == clock.seconds and resumed.wall_seconds >= 100.0
  # A resumed process compiles its shapes again.
  assert resumed.record_step(((8, 12), (8, 12)), 1.0)


def test_checkpoints_written_before_the_clock_read_as_zeros():
  old = Clock({"train_seconds": 12.5, "wall_seconds": 30.0, "train_tokens": 1000.0})
  assert old.seconds == pytest.approx(
    {"train": 12.5, "compile": 0.0, "eval": 0.0, "checkpoint": 0.0}
  )
