import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from attn_research import run_lock
from attn_research.errors import ConfigError
from tests.conftest import REPO

HOLDER = textwrap.dedent("""
  import sys, time
  from attn_research import run_lock
  with run_lock.hold(sys.argv[1], print):
    print("holding", flush=True)
    time.sleep(600)
""")


def _hold_in_child(path: str) -> subprocess.Popen:
  child = subprocess.Popen(
    [sys.executable, "-c", HOLDER, path],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    stdout=subprocess.PIPE,
    text=True,
  )
  assert child.stdout.readline().strip() == "holding"
  return child


def test_a_second_holder_is_refused_in_one_line_naming_the_first(tmp_path):
  path = str(tmp_path / "run")
  child = _hold_in_child(path)
  try:
    holder = run_lock.holder(path)
    assert (holder.host, holder.pid) == (socket.gethostname(), child.pid)
    with pytest.raises(run_lock.WorkdirHeldError) as refused, run_lock.hold(path, print):
      pytest.fail("held twice")
    message = str(refused.value)
    assert "\n" not in message
    assert f"{path} is held by pid {child.pid} on {socket.gethostname()} (since " in message
    assert "or use another --workdir" in message
  finally:
    child.kill()
    child.wait()


def test_the_lock_of_a_killed_holder_is_taken_over_with_a_note(tmp_path):
  path = str(tmp_path / "run")
  child = _hold_in_child(path)
  child.send_signal(signal.SIGKILL)
  child.wait()
  assert run_lock.holder(path) is None  # the kernel dropped its lock
  notes = []
  with run_lock.hold(path, notes.append):
    assert run_lock.holder(path).pid == os.getpid()
  assert len(notes) == 1
  assert notes[0].startswith(f"Took over {path} from pid {child.pid} on ")
  assert notes[0].endswith(", which is gone.")
  # Released cleanly: the next holder has nothing to say.
  with run_lock.hold(path, notes.append):
    pass
  assert len(notes) == 1 and run_lock.holder(path) is None


def test_an_uncreatable_run_directory_is_a_one_line_error():
  with (
    pytest.raises(ConfigError, match=r"^Cannot create the run directory /proc/x/run \("),
    run_lock.hold("/proc/x/run", print),
  ):
    pass
