"""Exclusive file locks between processes that build the same files (trials of a sweep
started together, hosts sharing a directory)."""

import contextlib
import fcntl
import os
from collections.abc import Iterator

from attn_research.errors import make_dirs


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
  """Holds an exclusive lock on `path` (created, with its directory, if missing) for
  the block; another process's block on the same path waits for it."""
  directory = os.path.dirname(path) or "."
  make_dirs(
    directory,
    f"Cannot create {directory}",
    "point it at a directory you can write (datasets: --config.dataset.data_dir).",
  )
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
