"""Ranks finished runs: seeds of one variant pooled into mean ± std of a chosen metric,
each variant tested against a baseline variant.

`collect` finds runs under sweep or run directories, `rank` groups them by config (seed
and data location aside) and orders the variants. Every number comes from the runs' own
`result.json`; nothing is decoded again. The paired bootstrap of each variant against the
baseline (`evaluation.significance`, seeds pooled) resamples the per-sentence statistics
its runs' final evaluations left (`runs.STATISTICS`). Rendering (markdown, CSV, HTML) is
the caller's.
"""

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from attn_research import runs as run_files
from attn_research.config import overrides as config_overrides
from attn_research.errors import ConfigError
from attn_research.evaluation import metrics, significance

# Config keys, and whole sections, that do not change the experiment.
IGNORED_KEYS = ("seed", "dataset.data_dir", "train.deterministic")
IGNORED_SECTIONS = ("tracking.",)
HEADLINE = ("bleu", "chrf", "exact_match", "ppl", "aer")  # shown beside the ranked metric


@dataclasses.dataclass(frozen=True)
class Run:
  """A completed run: its directory and the contents of its `result.json`."""

  path: str
  result: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A run left out of the ranking, with why: unfinished, diverged, or the error it
  failed with."""

  path: str
  reason: str


@dataclasses.dataclass(frozen=True)
class Collection:
  """What `collect` found: completed runs, and the runs that cannot be ranked."""

  runs: list[Run]
  unfinished: list[Skipped]
  failed: list[Skipped]
  diverged: list[Skipped] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Stat:
  """Mean and sample std (None with fewer than two values) over the seeds that have it."""

  mean: float | None
  std: float | None


@dataclasses.dataclass(frozen=True)
class Entry:
  """One variant: its rank, name, seed runs and pooled numbers."""

  rank: int
  name: str
  runs: list[Run]
  metrics: dict[str, Stat]  # metric of the board's split → stat over seeds
  num_params: int | None
  wall_seconds: Stat
  tokens_per_second: Stat
  comparison: significance.Comparison | None = None  # against the board's baseline

  def values(self, split: str, metric: str) -> list[float]:
    """`split.metric` of each seed run that has it, in seed order."""
    return [float(v) for r in self.runs if (v := _split(r, split).get(metric)) is not None]


@dataclasses.dataclass(frozen=True)
class Leaderboard:
  """Variants best first by `split.metric`, with the runs left out."""

  split: str
  metric: str
  columns: list[str]  # metrics shown, the ranked one first
  entries: list[Entry]
  unfinished: list[Skipped]
  failed: list[Skipped]
  diverged: list[Skipped] = dataclasses.field(default_factory=list)
  baseline: str = ""  # the variant every other is tested against; "" = no tests
  notes: list[str] = dataclasses.field(default_factory=list)  # why a test is missing

  @property
  def skipped(self) -> list[tuple[str, list[Skipped]]]:
    """The runs left out, titled, in the order reports list them."""
    return [
      ("Unfinished", self.unfinished),
      ("Diverged", self.diverged),
      ("Failed", self.failed),
    ]


def collect(directories: Sequence[str]) -> Collection:
  """Every run under `directories` (recursively), sorted by status.

  A run is a directory holding `result.json`, `config.json` (written when training
  starts) or `failed.json`; its subdirectories (checkpoints, heatmaps) are not searched.
  """
  completed, skipped, seen = [], {}, set()
  for directory in directories:
    if not os.path.isdir(directory):
      raise ConfigError(f"{directory} is not a directory; pass run or sweep directories.")
    for path, subdirs, _ in os.walk(directory):
      subdirs.sort()
      if not run_files.is_run(path):
        continue
      subdirs.clear()
      if os.path.realpath(path) in seen:
        continue
      seen.add(os.path.realpath(path))
      run = run_files.read_run(path)
      if run.status == run_files.COMPLETED:  # also where a retry followed a failure
        completed.append(Run(path, run.result))
        continue
      reason = run.error or (
        f"status {run.result['status']!r}" if "status" in run.result else f"no {run_files.RESULT}"
      )
      skipped.setdefault(run.status, []).append(Skipped(path, reason))
  if not (completed or skipped):
    raise ConfigError(
      f"No runs under {', '.join(directories)}; pass directories holding {run_files.RESULT} files."
    )
  return Collection(
    completed,
    unfinished=skipped.get(run_files.UNFINISHED, []),
    failed=skipped.get(run_files.FAILED_STATUS, []),
    diverged=skipped.get(run_files.DIVERGED, []),
  )


def group(runs: Sequence[Run]) -> dict[str, list[Run]]:
  """Runs by variant name: equal configs once `IGNORED_KEYS` and `IGNORED_SECTIONS` are
  dropped are one variant.

  The name lists the dotted config keys whose values differ between variants, in config
  order; a single variant is named after the directory holding its runs.
  """
  variants: dict[str, list[Run]] = {}
  flat: dict[str, dict[str, Any]] = {}
  for run in runs:
    config = {
      k: v
      for k, v in config_overrides.flatten(run.result.get("config", {})).items()
      if k not in IGNORED_KEYS and not k.startswith(IGNORED_SECTIONS)
    }
    key = json.dumps(config, sort_keys=True, default=str)
    variants.setdefault(key, []).append(run)
    flat.setdefault(key, config)
  keys = list(dict.fromkeys(k for config in flat.values() for k in config))
  differing = [
    k for k in keys if len({json.dumps(c.get(k), default=str) for c in flat.values()}) > 1
  ]
  if not differing:
    return {_directory_name(runs): list(runs)} if runs else {}
  return {
    ", ".join(f"{k}={_value(flat[key].get(k))}" for k in differing): members
    for key, members in variants.items()
  }


def rank(collection: Collection, metric: str, baseline: str = "") -> Leaderboard:
  """Variants ordered best first by the mean of `metric` (`split.name`, e.g. `test.bleu`),
  each tested against `baseline` (a variant's name, or a part of one name; "": the first
  row). Without per-sentence statistics the board has no tests and says why in `notes`;
  for an explicit `baseline` that is an error."""
  split, _, name = metric.partition(".")
  available = sorted(
    {
      f"{s}.{n}"
      for run in collection.runs
      for s, values in run.result.get("metrics", {}).items()
      for n in values
      if n in metrics.HIGHER_IS_BETTER
    }
  )
  if name not in metrics.HIGHER_IS_BETTER or (collection.runs and metric not in available):
    raise ConfigError(
      f"Unknown metric {metric!r}; pass --metric as one of: "
      f"{', '.join(available) or ', '.join(f'<split>.{n}' for n in metrics.HIGHER_IS_BETTER)}."
    )
  groups = group(collection.runs)
  present = {n for runs in groups.values() for r in runs for n in _split(r, split)}
  columns = [name, *(m for m in HEADLINE if m != name and m in present)]
  stats = {
    label: {m: stat(_split(r, split).get(m) for r in runs) for m in columns}
    for label, runs in groups.items()
  }
  sign = -1 if metrics.HIGHER_IS_BETTER[name] else 1

  def order(label: str) -> tuple[bool, float, str]:  # best first, missing values last
    mean = stats[label][name].mean
    return mean is None, sign * (mean or 0.0), label

  entries: list[Entry] = []
  for position, label in enumerate(sorted(groups, key=order), 1):
    runs = groups[label]
    tied = bool(entries) and stats[label][name].mean == entries[-1].metrics[name].mean
    entries.append(
      Entry(
        rank=entries[-1].rank if tied else position,
        name=label,
        runs=sorted(runs, key=lambda r: (seed(r) is None, seed(r) or 0, r.path)),
        metrics=stats[label],
        num_params=runs[0].result.get("num_params"),
        wall_seconds=stat(r.result.get("wall_seconds") for r in runs),
        tokens_per_second=stat(r.result.get("train_tokens_per_second") for r in runs),
      )
    )
  board = Leaderboard(
    split,
    name,
    columns,
    entries,
    collection.unfinished,
    collection.failed,
    collection.diverged,
  )
  if not entries:
    if baseline:
      raise ConfigError(f"--baseline={baseline}: there are no finished runs to test.")
    return board
  chosen = _baseline(entries, baseline)
  try:
    return _tested(board, chosen)
  except ConfigError as e:
    if baseline:
      raise
    return dataclasses.replace(board, notes=[f"No p-values: {e}"])


def _baseline(entries: Sequence[Entry], baseline: str) -> Entry:
  if not baseline:
    return entries[0]
  exact = [e for e in entries if e.name == baseline]
  matches = exact or [e for e in entries if baseline in e.name]
  if len(matches) != 1:
    found = "matches several" if matches else "names none"
    raise ConfigError(
      f"--baseline={baseline} {found} of the variants; pass one of: "
      + "; ".join(e.name for e in entries)
    )
  return matches[0]


def _tested(board: Leaderboard, baseline: Entry) -> Leaderboard:
  """`board` with each entry's paired bootstrap against `baseline` (the baseline's own
  comparison is with itself: its interval, p = 1); an entry that cannot be tested gets a
  note instead.

  Raises:
    ConfigError: the metric has no per-sentence statistics, or the baseline's runs lack
      them.
  """
  if board.metric not in metrics.SCORES:
    raise ConfigError(
      f"{board.metric} has no per-sentence statistics; rank by one of "
      f"{', '.join(f'{board.split}.{m}' for m in metrics.SCORES)}."
    )
  references, base = sentence_statistics(baseline.runs, board.split, board.metric)
  score = metrics.SCORES[board.metric]
  entries, notes = [], []
  for entry in board.entries:
    try:
      fingerprint, seeds = sentence_statistics(entry.runs, board.split, board.metric)
      if fingerprint != references:
        raise ConfigError(f"its runs scored other {board.split} references than the baseline's")
    except ConfigError as e:
      notes.append(f"{entry.name}: not tested: {e}")
      entries.append(entry)
      continue
    comparison = significance.paired_bootstrap(base, seeds, score)
    entries.append(dataclasses.replace(entry, comparison=comparison))
  return dataclasses.replace(board, entries=entries, baseline=baseline.name, notes=notes)


def _reevaluate(run: Run, split: str) -> str:
  return (
    f"python -m experiments.evaluate --workdir={run.path} --split={split} "
    f"--checkpoint=latest --reports_dir={run.path}"
  )


def sentence_statistics(
  runs: Sequence[Run], split: str, metric: str
) -> tuple[str, list[np.ndarray]]:
  """The references' fingerprint and each run's `[sentences, k]` statistics of `metric`
  on `split`, read from the files their final evaluations wrote; their score must be the
  run's reported one (a file rewritten from another checkpoint is refused).

  Raises:
    ConfigError: a file is missing or unreadable, lacks `metric`, disagrees with the
      run's result, or the runs scored different references.
  """
  fingerprints, seeds = set(), []
  for run in runs:
    path = os.path.join(run.path, run_files.STATISTICS.format(split=split))
    if not os.path.exists(path):
      raise ConfigError(
        f"{path} is missing (the run was evaluated without per-sentence statistics); "
        f"write it with {_reevaluate(run, split)}"
      )
    loaded = significance.load(path, fix=_reevaluate(run, split))
    if metric not in loaded.metrics:
      raise ConfigError(
        f"{path} has no {metric} statistics (it has {', '.join(sorted(loaded.metrics))}); "
        "test one of those metrics."
      )
    rows = loaded.metrics[metric]
    reported = _split(run, split).get(metric)
    if reported is not None and not math.isclose(
      metrics.SCORES[metric](rows.sum(0)), reported, rel_tol=1e-6, abs_tol=1e-9
    ):
      raise ConfigError(
        f"{path} does not score the run's {split}.{metric} of {reported:g} (another "
        f"checkpoint's?); rewrite it with {_reevaluate(run, split)}"
      )
    fingerprints.add(loaded.references)
    seeds.append(rows)
  if len(fingerprints) != 1:
    raise ConfigError(
      f"The seeds of {', '.join(r.path for r in runs)} scored different {split} references; "
      "compare runs of one dataset."
    )
  return fingerprints.pop(), seeds


def _value(value: Any) -> str:
  return "—" if value is None else str(value)


def _directory_name(runs: Sequence[Run]) -> str:
  common = os.path.commonpath([os.path.abspath(r.path) for r in runs])
  return os.path.basename(common) or common


def _split(run: Run, split: str) -> dict[str, Any]:
  return run.result.get("metrics", {}).get(split, {})


def seed(run: Run) -> Any:
  return run.result.get("config", {}).get("seed")


def stat(values: Iterable[float | None]) -> Stat:
  kept = [float(v) for v in values if v is not None and not math.isnan(v)]
  if not kept:
    return Stat(None, None)
  return Stat(statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else None)
