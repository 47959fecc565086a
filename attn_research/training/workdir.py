"""A run's directory: resolved config, metric log, result, vocabularies, checkpoints.

Files are replaced atomically (write to a temporary file, then rename), so a run killed
at any moment leaves either the old or the new version, never a torn file. Only
process 0 writes.
"""

import json
import os
import shutil
import tempfile
from typing import Any

import jax

from attn_research.errors import ConfigError

CONFIG, METRICS, RESULT = "config.json", "metrics.jsonl", "result.json"
CHECKPOINTS, BEST = "checkpoints", "best"  # latest checkpoints; lowest validation ppl
SOURCE_VOCAB, TARGET_VOCAB = "vocab.source.json", "vocab.target.json"
HEATMAPS = "heatmaps"
RUN_FILES = (CONFIG, METRICS, RESULT, CHECKPOINTS, BEST, SOURCE_VOCAB, TARGET_VOCAB, HEATMAPS)
REPORT_PREFIXES = ("hypotheses.", "bleu_by_length.")  # per-split reports of the final evaluation


class WorkdirConflictError(ConfigError):
  """The workdir holds a run with a different config."""


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8) to `path` via a temporary file and a rename."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data.encode("utf-8") if isinstance(data, str) else data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: tree}


def config_differences(old: dict, new: dict) -> list[str]:
  """Dotted keys whose values differ, as `key: old → new`."""
  a, b = _flatten(old), _flatten(new)
  return [
    f"{k}: {a.get(k, '<absent>')!r} → {b.get(k, '<absent>')!r}"
    for k in sorted(a.keys() | b.keys())
    if a.get(k, "<absent>") != b.get(k, "<absent>")
  ]


class Workdir:
  """Paths and atomic file operations of one run.

  Attributes:
    path: the run directory.
    writer: whether this process writes (process 0).
  """

  def __init__(self, path: str):
    self.path = os.path.abspath(os.path.expanduser(path))
    self.writer = jax.process_index() == 0

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def exists(self, name: str) -> bool:
    return os.path.exists(self.file(name))

  def read_json(self, name: str) -> Any:
    with open(self.file(name), encoding="utf-8") as f:
      return json.load(f)

  def write_json(self, name: str, data: Any) -> None:
    if self.writer:
      atomic_write(self.file(name), json.dumps(data, indent=2, ensure_ascii=False) + "\n")

  def claim(self, config: dict, overwrite: bool) -> None:
    """Makes the directory this config's: refuses a different run unless `overwrite`.

    Raises:
      WorkdirConflictError: the directory holds a run with another config.
    """
    config = json.loads(json.dumps(config))  # tuples → lists, as stored
    if overwrite and self.writer:
      reports = (
        [n for n in os.listdir(self.path) if n.startswith(REPORT_PREFIXES)]
        if os.path.isdir(self.path)
        else []
      )
      for name in (*RUN_FILES, *reports):
        target = self.file(name)
        if os.path.isdir(target):
          shutil.rmtree(target)
        elif os.path.exists(target):
          os.remove(target)
    if self.exists(CONFIG):
      diff = config_differences(self.read_json(CONFIG), config)
      if diff:
        raise WorkdirConflictError(
          f"{self.path} holds a run with a different config ({'; '.join(diff[:8])}"
          f"{'; …' if len(diff) > 8 else ''}). Use another --workdir, or pass --overwrite "
          "to delete that run and start again."
        )
      return
    if self.writer:
      os.makedirs(self.path, exist_ok=True)
      self.write_json(CONFIG, config)

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
