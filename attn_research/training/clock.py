"""Where a run's wall time goes: training, compilation, evaluation, checkpointing."""

import contextlib
import time
from collections.abc import Iterator

KINDS = ("train", "compile", "eval", "checkpoint")


class Clock:
  """Seconds spent per kind of work, and wall time, summed over a run's resumptions.

  A train step that meets a batch shape for the first time in this process is counted
  as `compile`: its time is mostly XLA compiling that shape. Train tokens per second
  then divide by `train` time alone.
  """

  def __init__(self, totals: dict[str, float] | None = None):
    """`totals`: a checkpoint's `as_dict()` (older checkpoints lack some kinds)."""
    totals = totals or {}
    self.seconds = {kind: float(totals.get(f"{kind}_seconds", 0.0)) for kind in KINDS}
    self._wall_before = float(totals.get("wall_seconds", 0.0))
    self._wall_start = time.perf_counter()
    self._shapes: set[tuple] = set()

  @contextlib.contextmanager
  def measure(self, kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[kind] += time.perf_counter() - start

  def record_step(self, shape: tuple, seconds: float) -> bool:
    """Adds a train step of batch `shape`; returns whether it counted as compilation
    (the first step of that shape in this process)."""
    compiled = shape not in self._shapes
    self._shapes.add(shape)
    self.seconds["compile" if compiled else "train"] += seconds
    return compiled

  @property
  def wall_seconds(self) -> float:
    return self._wall_before + time.perf_counter() - self._wall_start

  def as_dict(self) -> dict[str, float]:
    """`{kind}_seconds` per kind and `wall_seconds`, for checkpoints and result.json."""
    return {
      **{f"{k}_seconds": v for k, v in self.seconds.items()},
      "wall_seconds": self.wall_seconds,
    }
