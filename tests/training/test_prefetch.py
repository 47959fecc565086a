import time

import pytest

from attn_research.training.prefetch import Prefetch


class Counter:
  """An endless resumable iterator: 0, 1, 2, …; fails at `fail_at`."""

  def __init__(self, fail_at: int = -1):
    self.position, self.fail_at = 0, fail_at

  def __next__(self) -> int:
    if self.position == self.fail_at:
      raise ValueError("broken batch")
    self.position += 1
    return self.position - 1

  def get_state(self) -> dict:
    return {"position": self.position}


def test_prefetch_yields_in_order_and_reports_the_consumers_position():
  counter = Counter()
  prefetched = Prefetch(counter, lambda batch: batch * 10, size=2)
  assert prefetched.get_state() == {"position": 0}
  for expected in range(5):
    batch, placed = next(prefetched)
    assert (batch, placed) == (expected, expected * 10)
    # The producer runs ahead; the state is the one after the batch just handed out.
    assert prefetched.get_state() == {"position": expected + 1}
  deadline = time.monotonic() + 10.0
  while counter.position <= 5 and time.monotonic() < deadline:  # it fills its queue
    time.sleep(0.01)
  assert counter.position > 5
  prefetched.close()


def test_an_error_in_the_producer_reaches_the_consumer():
  prefetched = Prefetch(Counter(fail_at=2), lambda batch: batch)
  assert next(prefetched)[0] == 0 and next(prefetched)[0] == 1
  with pytest.raises(ValueError, match="broken batch"):
    next(prefetched)
  prefetched.close()
