"""Where a run's wall time goes: training, compilation, evaluation, checkpointing.

Compilation is timed by JAX itself: tracing, lowering and the XLA compile (or persistent
cache read) of every jitted function report their durations through `jax.monitoring`,
wherever they happen. Work measured under a kind (`train`, `eval`, …) counts as that
kind minus the compilation inside it, so train tokens per second divide by time spent
running compiled steps.
"""

import contextlib
import time
from collections.abc import Iterator

import jax

KINDS = ("train", "compile", "eval", "checkpoint")
COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)
BACKEND_COMPILE_EVENT = COMPILE_EVENTS[-1]
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


class _Compilations:
  """This process's compilation totals, fed by `jax.monitoring` listeners registered once."""

  def __init__(self):
    self.seconds = 0.0
    self.count = 0  # XLA compilations, including those read from the persistent cache
    self.cache_hits = 0
    self._listening = False

  def listen(self) -> None:
    if self._listening:
      return
    self._listening = True
    jax.monitoring.register_event_duration_secs_listener(self._on_duration)
    jax.monitoring.register_event_listener(self._on_event)

  def _on_duration(self, event: str, duration: float, **_) -> None:
    if event in COMPILE_EVENTS:
      self.seconds += duration
      self.count += event == BACKEND_COMPILE_EVENT

  def _on_event(self, event: str, **_) -> None:
    self.cache_hits += event == CACHE_HIT_EVENT


COMPILATIONS = _Compilations()


class Clock:
  """Seconds spent per kind of work, wall time and compilation counts, summed over a
  run's resumptions, and the train batch shapes of this process.
  """

  def __init__(self, totals: dict[str, float] | None = None):
    """`totals`: a checkpoint's `as_dict()` (older checkpoints lack some keys)."""
    COMPILATIONS.listen()
    totals = totals or {}
    self.seconds = {kind: float(totals.get(f"{kind}_seconds", 0.0)) for kind in KINDS}
    self._wall_before = float(totals.get("wall_seconds", 0.0))
    self._wall_start = time.perf_counter()
    self._counts_before = {k: int(totals.get(k, 0)) for k in ("compilations", "cache_hits")}
    self._counts_start = {"compilations": COMPILATIONS.count, "cache_hits": COMPILATIONS.cache_hits}
    self.train_shapes: set[tuple] = set()

  @contextlib.contextmanager
  def measure(self, kind: str) -> Iterator[None]:
    """Times a block as `kind`, except the compilation inside it."""
    start, compiled = time.perf_counter(), COMPILATIONS.seconds
    try:
      yield
    finally:
      compiled = COMPILATIONS.seconds - compiled
      self.seconds["compile"] += compiled
      self.seconds[kind] += time.perf_counter() - start - compiled

  def record_step(self, shape: tuple) -> None:
    """Notes a train step of batch `shape`."""
    self.train_shapes.add(shape)

  @property
  def wall_seconds(self) -> float:
    return self._wall_before + time.perf_counter() - self._wall_start

  def as_dict(self) -> dict[str, float]:
    """For checkpoints and result.json: `{kind}_seconds` per kind, `wall_seconds`,
    `compilations` (XLA programs compiled or read from the persistent cache),
    `cache_hits` (those read from it) and `train_shapes` (batch shapes this process
    trained on)."""
    now = {"compilations": COMPILATIONS.count, "cache_hits": COMPILATIONS.cache_hits}
    return {
      **{f"{k}_seconds": v for k, v in self.seconds.items()},
      "wall_seconds": self.wall_seconds,
      **{k: self._counts_before[k] + now[k] - self._counts_start[k] for k in now},
      "train_shapes": len(self.train_shapes),
    }
