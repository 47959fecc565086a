"""Ranks finished runs: seeds of one variant pooled into mean ± std of a chosen metric.

`collect` finds runs under sweep or run directories, `rank` groups them by config (seed
and data location aside) and orders the variants, `render` writes the table as markdown,
CSV or a self-contained sortable HTML page. Every number comes from the runs' own
`result.json`; nothing is recomputed.
"""

import csv
import dataclasses
import html
import io
import json
import math
import os
import statistics
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from attn_research.errors import ConfigError
from attn_research.training.workdir import CONFIG, HEATMAPS, RESULT

FAILED = "failed.json"  # left by the sweep launcher for a trial that raised: {"error": ...}
IGNORED_KEYS = ("seed", "dataset.data_dir")  # config keys that do not change the experiment
HIGHER_IS_BETTER = {
  "bleu": True,
  "tokenized_bleu": True,
  "chrf": True,
  "exact_match": True,
  "ppl": False,
  "loss": False,
  "aer": False,
}
HEADLINE = ("bleu", "chrf", "exact_match", "ppl", "aer")  # shown beside the ranked metric
FORMATS = ("markdown", "csv", "html")
_DECIMALS = {"bleu": 2, "tokenized_bleu": 2, "chrf": 2}  # the rest: 4


@dataclasses.dataclass(frozen=True)
class Run:
  """A completed run: its directory and the contents of its `result.json`."""

  path: str
  result: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A run left out of the ranking, with why: unfinished, or the error it failed with."""

  path: str
  reason: str


@dataclasses.dataclass(frozen=True)
class Collection:
  """What `collect` found: completed runs, and the runs that cannot be ranked."""

  runs: list[Run]
  unfinished: list[Skipped]
  failed: list[Skipped]


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


@dataclasses.dataclass(frozen=True)
class Leaderboard:
  """Variants best first by `split.metric`, with the runs left out; `render` formats it."""

  split: str
  metric: str
  columns: list[str]  # metrics shown, the ranked one first
  entries: list[Entry]
  unfinished: list[Skipped]
  failed: list[Skipped]


def collect(directories: Sequence[str]) -> Collection:
  """Every run under `directories` (recursively), sorted into completed, unfinished, failed.

  A run is a directory holding `result.json`, `config.json` (written when training
  starts) or `failed.json`; its subdirectories (checkpoints, heatmaps) are not searched.
  """
  runs, unfinished, failed, seen = [], [], [], set()
  for directory in directories:
    if not os.path.isdir(directory):
      raise ConfigError(f"{directory} is not a directory; pass run or sweep directories.")
    for path, subdirs, files in os.walk(directory):
      subdirs.sort()
      if not {RESULT, CONFIG, FAILED} & set(files):
        continue
      subdirs.clear()
      if os.path.realpath(path) in seen:
        continue
      seen.add(os.path.realpath(path))
      result = _read_json(path, RESULT) if RESULT in files else {}
      if result.get("status") == "completed":  # also where a retry followed a failure
        runs.append(Run(path, result))
      elif FAILED in files:
        failed.append(Skipped(path, str(_read_json(path, FAILED).get("error", "unknown error"))))
      else:
        reason = f"status {result['status']!r}" if "status" in result else f"no {RESULT}"
        unfinished.append(Skipped(path, reason))
  if not (runs or unfinished or failed):
    raise ConfigError(
      f"No runs under {', '.join(directories)}; pass directories holding {RESULT} files."
    )
  return Collection(runs, unfinished, failed)


def group(runs: Sequence[Run]) -> dict[str, list[Run]]:
  """Runs by variant name: equal configs once `IGNORED_KEYS` are dropped are one variant.

  The name lists the dotted config keys whose values differ between variants, in config
  order; a single variant is named after the directory holding its runs.
  """
  variants: dict[str, list[Run]] = {}
  flat: dict[str, dict[str, Any]] = {}
  for run in runs:
    config = {
      k: v for k, v in _flatten(run.result.get("config", {})).items() if k not in IGNORED_KEYS
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


def rank(collection: Collection, metric: str) -> Leaderboard:
  """Variants ordered best first by the mean of `metric` (`split.name`, e.g. `test.bleu`)."""
  split, _, name = metric.partition(".")
  available = sorted(
    {
      f"{s}.{n}"
      for run in collection.runs
      for s, values in run.result.get("metrics", {}).items()
      for n in values
      if n in HIGHER_IS_BETTER
    }
  )
  if name not in HIGHER_IS_BETTER or (collection.runs and metric not in available):
    raise ConfigError(
      f"Unknown metric {metric!r}; pass --metric as one of: "
      f"{', '.join(available) or ', '.join(f'<split>.{n}' for n in HIGHER_IS_BETTER)}."
    )
  groups = group(collection.runs)
  present = {n for runs in groups.values() for r in runs for n in _split(r, split)}
  columns = [name, *(m for m in HEADLINE if m != name and m in present)]
  stats = {
    label: {m: _stat(_split(r, split).get(m) for r in runs) for m in columns}
    for label, runs in groups.items()
  }
  sign = -1 if HIGHER_IS_BETTER[name] else 1

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
        runs=sorted(runs, key=lambda r: (_seed(r) is None, _seed(r) or 0, r.path)),
        metrics=stats[label],
        num_params=runs[0].result.get("num_params"),
        wall_seconds=_stat(r.result.get("wall_seconds") for r in runs),
        tokens_per_second=_stat(r.result.get("train_tokens_per_second") for r in runs),
      )
    )
  return Leaderboard(split, name, columns, entries, collection.unfinished, collection.failed)


def render(board: Leaderboard, fmt: str, link_base: str = ".") -> str:
  """The board as `fmt` (one of `FORMATS`); HTML links are relative to `link_base`."""
  if fmt == "markdown":
    return _markdown(board)
  if fmt == "csv":
    return _csv(board)
  if fmt == "html":
    return _html(board, link_base)
  raise ConfigError(f"Unknown format {fmt!r}; pass one of {', '.join(FORMATS)}.")


def _read_json(directory: str, name: str) -> dict[str, Any]:
  try:
    with open(os.path.join(directory, name), encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(
      f"Cannot read {os.path.join(directory, name)} ({e}); fix or remove it."
    ) from e
  return data if isinstance(data, dict) else {}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if not isinstance(tree, dict):
    return {prefix[:-1]: tree}
  out = {}
  for k, v in tree.items():
    out.update(_flatten(v, f"{prefix}{k}."))
  return out


def _value(value: Any) -> str:
  return "—" if value is None else str(value)


def _directory_name(runs: Sequence[Run]) -> str:
  common = os.path.commonpath([os.path.abspath(r.path) for r in runs])
  return os.path.basename(common) or common


def _split(run: Run, split: str) -> dict[str, Any]:
  return run.result.get("metrics", {}).get(split, {})


def _seed(run: Run) -> Any:
  return run.result.get("config", {}).get("seed")


def _stat(values: Iterable[float | None]) -> Stat:
  kept = [float(v) for v in values if v is not None and not math.isnan(v)]
  if not kept:
    return Stat(None, None)
  return Stat(statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else None)


def _number(value: float | None, decimals: int) -> str:
  return "—" if value is None else f"{value:,.{decimals}f}"


def _mean_std(stat: Stat, metric: str) -> str:
  decimals = _DECIMALS.get(metric, 4)
  if stat.mean is None:
    return "—"
  return f"{_number(stat.mean, decimals)} ± {_number(stat.std, decimals)}"


def _duration(seconds: float | None) -> str:
  if seconds is None:
    return "—"
  minutes, secs = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _cells(board: Leaderboard, entry: Entry) -> list[str]:
  """Display text of one row, in the order of `_headers`."""
  ranked, *others = board.columns
  return [
    str(entry.rank),
    entry.name,
    _mean_std(entry.metrics[ranked], ranked),
    str(len(entry.runs)),
    *(_number(entry.metrics[m].mean, _DECIMALS.get(m, 4)) for m in others),
    "—" if entry.num_params is None else f"{entry.num_params:,}",
    _duration(entry.wall_seconds.mean),
    _number(entry.tokens_per_second.mean, 0),
  ]


def _headers(board: Leaderboard) -> list[str]:
  ranked, *others = board.columns
  return [
    "rank",
    "variant",
    f"{board.split}.{ranked}",
    "seeds",
    *others,
    "params",
    "wall time",
    "tokens/s",
  ]


def _skipped_lines(board: Leaderboard) -> list[str]:
  lines = []
  for title, items in (("Unfinished", board.unfinished), ("Failed", board.failed)):
    if items:
      lines += [
        "",
        f"{title}: {len(items)}",
        *(f"- {s.path}: {' '.join(s.reason.split())}" for s in items),
      ]
  return lines


def _markdown(board: Leaderboard) -> str:
  headers = _headers(board)
  rows = [[c.replace("|", r"\|") for c in _cells(board, e)] for e in board.entries]
  align = [":---" if h == "variant" else "---:" for h in headers]
  lines = [f"| {' | '.join(row)} |" for row in (headers, align, *rows)]
  return "\n".join([*lines, *_skipped_lines(board)]) + "\n"


def _csv(board: Leaderboard) -> str:
  """One row per variant, unrounded; a std is empty with one seed, a missing value empty."""
  columns = [f"{board.split}.{m}" for m in board.columns]
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(
    [
      "rank",
      "variant",
      "seeds",
      *(f"{c}_{s}" for c in columns for s in ("mean", "std")),
      "num_params",
      "wall_seconds_mean",
      "train_tokens_per_second_mean",
    ]
  )
  for e in board.entries:
    stats = [e.metrics[m] for m in board.columns]
    writer.writerow(
      _blank_none(
        [
          e.rank,
          e.name,
          len(e.runs),
          *(v for s in stats for v in (s.mean, s.std)),
          e.num_params,
          e.wall_seconds.mean,
          e.tokens_per_second.mean,
        ]
      )
    )
  return out.getvalue()


def _blank_none(values: list[Any]) -> list[Any]:
  return ["" if v is None else v for v in values]


_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: .3em .7em; border-bottom: 1px solid #ddd; text-align: right; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[data-order=asc]::after { content: " ▲"; } th[data-order=desc]::after { content: " ▼"; }
td.text, th.text { text-align: left; }
"""

# Click a header to sort by it; numbers compare by their unrounded data-value, blanks last.
_SCRIPT = """
document.querySelectorAll("table.leaderboard th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], asc = th.dataset.order !== "asc";
  th.parentNode.querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? "asc" : "desc";
  const key = row => { const v = row.cells[col].dataset.value ?? row.cells[col].textContent;
    return v === "" ? null : isNaN(v) ? v : Number(v); };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(row => body.append(row));
}));
"""


def _html(board: Leaderboard, link_base: str) -> str:
  """A self-contained page: the sortable table, each seed run's plots, skipped runs."""
  e = html.escape
  ranked, *others = board.columns
  headers = _headers(board)
  head = "".join(
    f'<th class="text">{e(h)}</th>' if h == "variant" else f"<th>{e(h)}</th>" for h in headers
  )
  head += '<th class="text">runs</th>'
  rows = []
  for entry in board.entries:
    values = [
      entry.rank,
      entry.name,
      entry.metrics[ranked].mean,
      len(entry.runs),
      *(entry.metrics[m].mean for m in others),
      entry.num_params,
      entry.wall_seconds.mean,
      entry.tokens_per_second.mean,
    ]
    cells = [
      f'<td class="text">{e(text)}</td>'
      if header == "variant"
      else f'<td data-value="{"" if value is None else repr(value)}">{e(text)}</td>'
      for header, text, value in zip(headers, _cells(board, entry), values, strict=True)
    ]
    links = "<br>".join(_run_links(run, board.split, link_base) for run in entry.runs)
    rows.append(f'<tr>{"".join(cells)}<td class="text">{links}</td></tr>')
  skipped = "".join(
    f"<h2>{title}: {len(items)}</h2><ul>"
    + "".join(f"<li>{e(s.path)}: {e(s.reason)}</li>" for s in items)
    + "</ul>"
    for title, items in (("Unfinished", board.unfinished), ("Failed", board.failed))
    if items
  )
  title = e(f"Leaderboard: {board.split}.{ranked}")
  return (
    f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
    f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    f'<table class="leaderboard">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
    + "\n".join(rows)
    + f"\n</tbody>\n</table>\n{skipped}\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
  )


def _run_links(run: Run, split: str, link_base: str) -> str:
  """`seed N`, linking the run's BLEU-by-length plot and heatmaps of `split` where present."""
  seed = _seed(run)
  parts = [html.escape(f"seed {seed}" if seed is not None else os.path.basename(run.path))]
  for label, target in (
    ("BLEU by length", os.path.join(run.path, f"bleu_by_length.{split}.png")),
    ("heatmaps", os.path.join(run.path, HEATMAPS, split)),
  ):
    if os.path.exists(target):
      href = urllib.parse.quote(os.path.relpath(target, link_base).replace(os.sep, "/"))
      if os.path.isdir(target):
        href += "/"
      parts.append(f'<a href="{html.escape(href)}">{html.escape(label)}</a>')
  return " · ".join(parts)
