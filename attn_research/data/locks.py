"""Exclusive file locks between processes that build the same files (trials of a sweep
started together, hosts sharing a directory)."""

import contextlib
import fcntl
import os
from collections.abc import Iterator


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
  """Holds an exclusive lock on `path` (created, with its directory, if missing) for
  the block; another process's block on the same path waits for it."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
