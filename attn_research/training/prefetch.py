"""Training batches prepared ahead in a background thread.

The thread builds each host batch and starts its transfer to the devices while the
devices run earlier steps. A checkpoint must record the consumer's position, not the
producer's, so every queued batch carries the iterator state after it.
"""

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class ResumableIterator(Protocol):
  def __next__(self) -> Any: ...

  def get_state(self) -> dict: ...


_FAILED = object()


class Prefetch(Iterator[tuple[Any, Any]]):
  """Yields `(host_batch, place(host_batch))` from `batches`, `size` ahead.

  Args:
    batches: an endless iterator with `get_state()`.
    place: what to do with each batch in the thread (put it on the devices).
    size: batches prepared ahead.
  """

  def __init__(self, batches: ResumableIterator, place: Callable[[Any], Any], size: int = 2):
    self._batches = batches
    self._place = place
    self._queue: queue.Queue = queue.Queue(maxsize=size)
    self._stop = threading.Event()
    self._state = batches.get_state()
    self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
    self._thread.start()

  def _produce(self) -> None:
    try:
      while not self._stop.is_set():
        batch = next(self._batches)
        self._put((batch, self._place(batch), self._batches.get_state()))
    except BaseException as error:  # re-raised in the consumer
      self._put((_FAILED, error, None))

  def _put(self, item: tuple) -> None:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return
      except queue.Full:
        continue

  def __next__(self) -> tuple[Any, Any]:
    batch, placed, state = self._queue.get()
    if batch is _FAILED:
      raise placed
    self._state = state
    return batch, placed

  def get_state(self) -> dict:
    """The position after the last batch handed out."""
    return self._state

  def close(self) -> None:
    self._stop.set()
    self._thread.join()
