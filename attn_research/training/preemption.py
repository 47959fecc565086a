"""Preemption: SIGTERM (what SLURM and preemptible cloud machines send before SIGKILL) or
SIGUSR1 (what `launch/slurm.py` asks SLURM to send ahead of the time limit) asks the
trainer to stop at the end of its current step, checkpoint there and exit, so that the
rerun resumes from that step instead of the last periodic checkpoint.

A run over several processes stops only where they all agree: at a log step, through one
small all-gather, so that every process saves the same step.
"""

import signal
import threading
from types import FrameType

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preemption:
  """Catches `SIGNALS` while open: `requested` says whether one arrived (and which).

  Handlers can only be set from the main thread; elsewhere (a trainer started from a
  thread) the signals keep their previous meaning and `requested` stays None.
  """

  def __init__(self):
    self.requested: str | None = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for number in SIGNALS:
        self._previous[number] = signal.signal(number, self._catch)

  def _catch(self, number: int, frame: FrameType | None) -> None:
    self.requested = signal.Signals(number).name

  def stop(self, at_log_step: bool) -> str | None:
    """The signal to stop on after the current step (None: go on). Several processes
    decide together, and only `at_log_step`."""
    if jax.process_count() == 1:
      return self.requested
    if not at_log_step:
      return None
    caught = multihost_utils.process_allgather(np.int32(self.requested is not None))
    return (self.requested or "a signal to another process") if caught.any() else None

  def close(self) -> None:
    for number, previous in self._previous.items():
      signal.signal(number, previous)
    self._previous = {}
