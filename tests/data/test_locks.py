import contextlib
import fcntl
import glob
import subprocess
import sys
import textwrap

from attn_research.data import datasets, locks
from attn_research.data.datasets import synthetic
from tests.conftest import named


def test_a_second_process_waits_for_the_lock(tmp_path):
  path = str(tmp_path / "sub" / "x.lock")
  waiter = textwrap.dedent(f"""
    from attn_research.data import locks
    with locks.exclusive({path!r}):
      print("acquired")
  """)
  with locks.exclusive(path):
    child = subprocess.Popen([sys.executable, "-c", waiter], stdout=subprocess.PIPE, text=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
      child.wait(timeout=3)
    assert child.returncode is None, "the child took a held lock (or failed)"
  out, _ = child.communicate(timeout=60)
  assert out.strip() == "acquired" and child.returncode == 0


def test_a_dataset_is_built_under_its_lock(tmp_path, monkeypatch):
  # Trials started together must not build the same TFDS dataset at once (the second
  # rename of the finished build would fail): the build holds a lock the others wait on.
  monkeypatch.setattr(
    synthetic, "SPLIT_SIZES", {"train": 30, "validation": 5, "test": 5, "test_long": 5}
  )
  held = []
  generate = synthetic.Synthetic._generate_examples

  def checking(self, examples):
    for path in glob.glob(str(tmp_path / "**" / "*.lock"), recursive=True):
      with open(path) as f:
        try:
          fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
          held.append(False)
          fcntl.flock(f, fcntl.LOCK_UN)
        except BlockingIOError:
          held.append(True)
    yield from generate(self, examples)

  monkeypatch.setattr(synthetic.Synthetic, "_generate_examples", checking)
  assert (
    len(datasets.open_dataset(named("synthetic/sort", str(tmp_path))).load()["train"]["source"])
    == 30
  )
  assert held and all(held)
