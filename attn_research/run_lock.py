"""One writer per run directory: an exclusive lock that names its holder.

The lock is `flock` on `<workdir>/.lock`. The kernel drops it when its holder exits,
however it exits (kill -9 included), and Linux NFS clients map it onto byte-range locks
that the server arbitrates, so trainers on hosts sharing a file system exclude each other
too. The file holds its holder (host, pid, since) for the one-line refusal; a file that
still names a holder whose lock is gone is a run that died, and the next holder says it
took over. The file itself is never deleted: a process could be waiting on its old inode.

This module imports no jax: launchers ask who holds a trial before starting it.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator

from attn_research.errors import ConfigError, make_dirs

LOCK = ".lock"
ATTEMPTS, PAUSE_SECONDS = 5, 0.1  # a reader's probe holds the lock for an instant


class WorkdirHeldError(ConfigError):
  """Another live process holds the run directory."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """The process that holds (or held) a run directory."""

  host: str
  pid: int
  since: float  # seconds since the epoch

  def __str__(self) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
    return f"pid {self.pid} on {self.host} (since {since})"


def _read(fd: int) -> Holder | None:
  try:
    record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    return Holder(str(record["host"]), int(record["pid"]), float(record["since"]))
  except (ValueError, KeyError, TypeError):  # empty: released cleanly
    return None


def _try_lock(fd: int, operation: int) -> bool:
  try:
    fcntl.flock(fd, operation | fcntl.LOCK_NB)
    return True
  except BlockingIOError:
    return False


def holder(path: str) -> Holder | None:
  """The live process holding run directory `path`, or None when no process does."""
  try:
    fd = os.open(os.path.join(path, LOCK), os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    if _try_lock(fd, fcntl.LOCK_SH):
      fcntl.flock(fd, fcntl.LOCK_UN)
      return None
    return _read(fd) or Holder("an unknown host", 0, time.time())
  finally:
    os.close(fd)


@contextlib.contextmanager
def hold(path: str, note: Callable[[str], None]) -> Iterator[None]:
  """Holds run directory `path` (created if missing) for the block.

  Raises:
    WorkdirHeldError: another live process holds it (one line naming the holder).
    ConfigError: the directory cannot be created.
  """
  make_dirs(path, f"Cannot create the run directory {path}", "pass another --workdir.")
  fd = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
  try:
    for _ in range(ATTEMPTS):
      if _try_lock(fd, fcntl.LOCK_EX):
        break
      time.sleep(PAUSE_SECONDS)
    else:
      other = _read(fd) or "another process"
      raise WorkdirHeldError(
        f"{path} is held by {other}, which is training it; wait for it to finish or stop "
        "it (the run resumes from its checkpoint), or use another --workdir."
      )
    previous = _read(fd)
    if previous is not None:
      note(f"Took over {path} from {previous}, which is gone.")
    record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
    os.fsync(fd)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)
