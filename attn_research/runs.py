"""Run directories: the one place that reads and writes their files.

A run directory holds:
  config.json      the resolved config, written when the run starts;
  metrics.jsonl    one JSON object per log or eval step;
  result.json      written last: `status` "completed" (with the metrics) or "diverged";
  failed.json      left by a launcher for a run that exited with an error;
  train.log        a launcher's log of the run's output (appended by every attempt);
  tensorboard/     TensorBoard event files of the same numbers as metrics.jsonl;
  vocab.*.json, checkpoints/, best/, heatmaps/, hypotheses.<split>.txt,
  statistics.<split>.npz, … .
Every file is replaced atomically (a temporary file, then a rename), so a run killed at
any moment leaves the old or the new version, never a torn file.

This module imports no jax: the launchers, leaderboards and paper tables read runs
without it, and a caller that runs several processes says which one writes.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import ml_collections

from attn_research.config.overrides import config_differences, stored
from attn_research.errors import ConfigError

CONFIG, METRICS, RESULT, FAILED = "config.json", "metrics.jsonl", "result.json", "failed.json"
LOG = "train.log"
CHECKPOINTS, BEST = "checkpoints", "best"  # latest checkpoints; lowest validation ppl
AVERAGED = "averaged"  # the mean of the latest checkpoints' parameters (experiments.average)
SOURCE_VOCAB, TARGET_VOCAB = "vocab.source.json", "vocab.target.json"
HEATMAPS = "heatmaps"
TENSORBOARD = "tensorboard"  # event files mirroring metrics.jsonl
RUN_FILES = (
  CONFIG,
  METRICS,
  RESULT,
  FAILED,
  CHECKPOINTS,
  BEST,
  SOURCE_VOCAB,
  TARGET_VOCAB,
  TENSORBOARD,
  AVERAGED,
)
STATISTICS = "statistics.{split}.npz"  # per-sentence metric statistics (evaluation.significance)
# Per-split reports of the final evaluation.
REPORT_PREFIXES = ("hypotheses.", "bleu_by_length.", "statistics.")

# What a run directory says about its run.
NEW, UNFINISHED, COMPLETED, DIVERGED, FAILED_STATUS = (
  "new",
  "unfinished",
  "completed",
  "diverged",
  "failed",
)
FINISHED = (COMPLETED, DIVERGED)  # rerunning the same config would not change the outcome
PREEMPTED = "preempted"  # what a trainer stopped by a signal returns; nothing is written

# How a trainer's exit status tells its launcher what became of the run (sysexits' range).
EXIT_PREEMPTED = 75  # stopped by SIGTERM/SIGUSR1 after checkpointing: rerun to resume
EXIT_HELD = 76  # another live process holds the workdir: nothing was done


class WorkdirConflictError(ConfigError):
  """The workdir holds a run with a different config."""


# ----------------------------------------------------------------------------------------
# Files.


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


_UMASK = _umask()  # read once: setting it to read it is not thread-safe


@contextlib.contextmanager
def atomic_writer(path: str) -> Iterator[BinaryIO]:
  """A binary file that becomes `path` (via a temporary file and a rename) only when the
  block completes; an exception leaves `path` as it was."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  os.fchmod(fd, 0o666 & ~_UMASK)  # as `open` would create it (mkstemp makes 0600)
  try:
    with os.fdopen(fd, "wb") as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8) to `path` via a temporary file and a rename."""
  with atomic_writer(path) as f:
    f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path: str, data: Any) -> None:
  atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str) -> Any:
  """The JSON in `path`; a file that cannot be read is a `ConfigError` naming it."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f"Cannot read {path} ({e}); fix or remove it.") from e


@dataclasses.dataclass(frozen=True)
class Run:
  """What a run directory says about its run.

  Attributes:
    path: the directory.
    status: NEW (nothing there), UNFINISHED (started, or its result cannot be read),
      COMPLETED, DIVERGED or FAILED_STATUS (a launcher recorded an error).
    result: the contents of result.json ({} when there is none).
    error: why it failed or diverged, or why its result cannot be read; "" otherwise.
  """

  path: str
  status: str
  result: dict[str, Any]
  error: str = ""

  @property
  def config(self) -> dict[str, Any]:
    """The run's resolved config (from result.json, else config.json; {} if neither)."""
    if "config" in self.result:
      return self.result["config"]
    try:
      return read_json(os.path.join(self.path, CONFIG))
    except ConfigError:
      return {}


def read_run(path: str) -> Run:
  """The status and result of the run in `path`; never raises on a damaged run."""
  result, error = {}, ""
  if os.path.exists(os.path.join(path, RESULT)):
    try:
      result = read_json(os.path.join(path, RESULT))
    except ConfigError as e:
      error = str(e)
    result = result if isinstance(result, dict) else {}
  status = result.get("status")
  if status in FINISHED:
    return Run(path, status, result, result.get("error", ""))
  if os.path.exists(os.path.join(path, FAILED)):
    try:
      failed = read_json(os.path.join(path, FAILED))
      error = str(failed.get("error", "")) if isinstance(failed, dict) else ""
    except ConfigError as e:
      error = str(e)
    return Run(path, FAILED_STATUS, result, error or "unknown error")
  if result or error or os.path.exists(os.path.join(path, CONFIG)):
    return Run(path, UNFINISHED, result, error)
  return Run(path, NEW, result)


def is_run(path: str) -> bool:
  """Whether `path` holds a run's files (a config, a result or a recorded failure)."""
  return any(os.path.exists(os.path.join(path, name)) for name in (CONFIG, RESULT, FAILED))


def is_finished(path: str) -> bool:
  """Whether `path` holds a run that completed or diverged: running it again would
  give the same outcome, so launchers skip it."""
  return read_run(path).status in FINISHED


def record_failure(path: str, record: dict[str, Any]) -> None:
  """Writes failed.json (`{"error": …, …}`) for a run that exited with an error."""
  os.makedirs(path, exist_ok=True)
  write_json(os.path.join(path, FAILED), record)


def clear_failure(path: str) -> None:
  if os.path.exists(os.path.join(path, FAILED)):
    os.remove(os.path.join(path, FAILED))


class Workdir:
  """The files of one run, as the process training or evaluating it sees them.

  Attributes:
    path: the run directory.
    writer: whether this process writes (process 0 of a run over several processes).
  """

  def __init__(self, path: str, writer: bool = True):
    self.path = os.path.abspath(os.path.expanduser(path))
    self.writer = writer

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def exists(self, name: str) -> bool:
    return os.path.exists(self.file(name))

  def read_json(self, name: str) -> Any:
    return read_json(self.file(name))

  def write_json(self, name: str, data: Any) -> None:
    if self.writer:
      write_json(self.file(name), data)

  def write_text(self, name: str, text: str) -> None:
    if self.writer:
      atomic_write(self.file(name), text)

  def read_text(self, name: str) -> str:
    with open(self.file(name), encoding="utf-8") as f:
      return f.read()

  def status(self) -> Run:
    return read_run(self.path)

  def claim(
    self,
    config: ml_collections.ConfigDict,
    overwrite: bool,
    complete: Callable[[Any], ml_collections.ConfigDict],
  ) -> None:
    """Makes the directory this config's: refuses a different run unless `overwrite`.
    `complete` reads a stored config as the current code does (`experiment.complete`).

    Raises:
      WorkdirConflictError: the directory holds a run with another config.
    """
    if overwrite and self.writer:
      self._delete_run()
    if self.exists(CONFIG):
      diff = config_differences(complete(self.read_json(CONFIG)), config)
      if diff:
        raise WorkdirConflictError(
          f"{self.path} holds a run with a different config ({'; '.join(diff[:8])}"
          f"{'; …' if len(diff) > 8 else ''}). Use another --workdir, or pass --overwrite "
          "to delete that run and start again."
        )
      return
    if self.writer:
      os.makedirs(self.path, exist_ok=True)
      self.write_json(CONFIG, stored(config))

  def _delete_run(self) -> None:
    if not os.path.isdir(self.path):
      return
    reports = [n for n in os.listdir(self.path) if n.startswith(REPORT_PREFIXES)]
    for name in (*RUN_FILES, HEATMAPS, *reports):
      target = self.file(name)
      if os.path.isdir(target):
        shutil.rmtree(target)
      elif os.path.exists(target):
        os.remove(target)

  def read_metrics(self) -> list[dict]:
    if not self.exists(METRICS):
      return []
    with open(self.file(METRICS), encoding="utf-8") as f:
      return [json.loads(line) for line in f if line.strip()]

  def append_metrics(self, record: dict) -> None:
    if self.writer:
      with open(self.file(METRICS), "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")

  def truncate_metrics(self, last_step: int) -> None:
    """Drops records after `last_step` (logged by a run that died before checkpointing)."""
    kept = [r for r in self.read_metrics() if r["step"] <= last_step]
    if self.writer and self.exists(METRICS):
      atomic_write(self.file(METRICS), "".join(json.dumps(r) + "\n" for r in kept))
