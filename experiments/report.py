"""Reports for people: markdown, CSV and HTML renderings of leaderboards, paper tables
and run comparisons.

The library collects, groups and ranks (`attn_research.evaluation.leaderboard`); every
rendering of those numbers, and the number formats they share (mean ± std, durations,
markdown tables), lives here.
"""

import csv
import html
import io
import math
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

from attn_research import runs
from attn_research.errors import ConfigError
from attn_research.evaluation import significance
from attn_research.evaluation.leaderboard import (
  Entry,
  Leaderboard,
  Run,
  Stat,
  seed,
)
from attn_research.evaluation.metrics import HIGHER_IS_BETTER

FORMATS = ("markdown", "csv", "html")
TEST_HEADERS = ("95% CI", "vs baseline", "p")  # leaderboard columns of significance tests
DECIMALS = {"bleu": 2, "tokenized_bleu": 2, "chrf": 2}  # the rest: 4


# ----------------------------------------------------------------------------------------
# Shared formats.


def number(value: float | None, decimals: int) -> str:
  """`value` with thousands separators, or "—" when missing."""
  return "—" if value is None else f"{value:,.{decimals}f}"


def mean_std(stat: Stat, decimals: int) -> str:
  """`mean ± std` (`± —` without a std, from one value); `—` without values."""
  if stat.mean is None:
    return "—"
  return f"{number(stat.mean, decimals)} ± {number(stat.std, decimals)}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns=(0,)) -> str:
  """A GitHub markdown table; `text_columns` are left-aligned, the rest right-aligned."""
  escape = [[str(c).replace("|", r"\|") for c in row] for row in rows]
  align = [":---" if i in text_columns else "---:" for i in range(len(headers))]
  return "\n".join(f"| {' | '.join(row)} |" for row in (headers, align, *escape)) + "\n"


def render_leaderboard(board: Leaderboard, fmt: str, link_base: str = ".") -> str:
  """The board as `fmt` (one of `FORMATS`); HTML links are relative to `link_base`."""
  if fmt == "markdown":
    return _markdown(board)
  if fmt == "csv":
    return _csv(board)
  if fmt == "html":
    return _html(board, link_base)
  raise ConfigError(f"Unknown format {fmt!r}; pass one of {', '.join(FORMATS)}.")


def compare_table(
  labels: Sequence[str],
  results: Sequence[dict[str, Any]],
  split: str,
  metric: str = "bleu",
  tests: Sequence[significance.Comparison | None] = (),
) -> str:
  """Runs side by side: one markdown row per run, the headline metrics of `split`, and
  with `tests` (each run against the first) the difference in `metric` and its p-value."""
  columns = ("bleu", "tokenized_bleu", "chrf", "exact_match", "ppl", "aer")
  decimals = DECIMALS.get(metric, 4)
  rows = []
  for i, (label, result) in enumerate(zip(labels, results, strict=True)):
    metrics = result["metrics"][split]
    row = [label, *(number(metrics.get(c), DECIMALS.get(c, 4)) for c in columns)]
    if tests:
      c = tests[i]
      if i == 0:
        row += ["baseline", "—"]
      elif c is None:
        row += ["—", "—"]
      else:
        low, high = c.difference_interval
        row += [
          f"{_signed(c.difference, decimals)} [{_signed(low, decimals)}, {_signed(high, decimals)}]",
          f"{c.p_value:.3f}",
        ]
    rows.append(row)
  headers = ["run", *(f"{split}.{c}" for c in columns)]
  if tests:
    headers += [f"{metric} vs first [95%]", "p"]
  return markdown_table(headers, rows)


# ----------------------------------------------------------------------------------------
# Leaderboards.


def _duration(seconds: float | None) -> str:
  if seconds is None:
    return "—"
  minutes, secs = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _signed(value: float, decimals: int) -> str:
  return f"{value:+,.{decimals}f}".replace("-", "−")


def _tests(board: Leaderboard, entry: Entry) -> list[str]:
  """The 95% interval of the entry's mean, its difference from the baseline with the
  difference's interval, and the p-value; "—" where there is none."""
  c, decimals = entry.comparison, DECIMALS.get(board.metric, 4)
  if c is None:
    return ["—"] * 3
  interval = f"{number(c.mean, decimals)} ± {number(c.ci, decimals)}"
  if entry.name == board.baseline:
    return [interval, "baseline", "—"]
  low, high = c.difference_interval
  difference = (
    f"{_signed(c.difference, decimals)} [{_signed(low, decimals)}, {_signed(high, decimals)}]"
  )
  return [interval, difference, f"{c.p_value:.3f}"]


def _cells(board: Leaderboard, entry: Entry) -> list[str]:
  """Display text of one row, in the order of `_headers`."""
  ranked, *others = board.columns
  return [
    str(entry.rank),
    entry.name,
    mean_std(entry.metrics[ranked], DECIMALS.get(ranked, 4)),
    *(_tests(board, entry) if board.baseline else ()),
    str(len(entry.runs)),
    *(number(entry.metrics[m].mean, DECIMALS.get(m, 4)) for m in others),
    "—" if entry.num_params is None else f"{entry.num_params:,}",
    _duration(entry.wall_seconds.mean),
    number(entry.tokens_per_second.mean, 0),
  ]


def _headers(board: Leaderboard) -> list[str]:
  ranked, *others = board.columns
  return [
    "rank",
    "variant",
    f"{board.split}.{ranked}",
    *(TEST_HEADERS if board.baseline else ()),
    "seeds",
    *others,
    "params",
    "wall time",
    "tokens/s",
  ]


def _test_caption(board: Leaderboard) -> list[str]:
  """What the test columns mean, and why tests are missing."""
  lines = []
  if board.baseline:
    lines.append(
      f"Baseline: {board.baseline}. 95% CI: the bootstrap mean ± half-width of the 95% "
      f"interval; vs baseline: the difference in {board.split}.{board.metric} with the 2.5–97.5 "
      f"percentiles of its resamples; p: paired bootstrap ({significance.SAMPLES} resamples "
      f"of the {board.split} sentences, seeds pooled; Koehn 2004)."
    )
  return lines + list(board.notes)


def _markdown(board: Leaderboard) -> str:
  headers = _headers(board)
  text = markdown_table(headers, [_cells(board, e) for e in board.entries], text_columns=(1,))
  lines = [line for caption in _test_caption(board) for line in ("", caption)]
  for title, items in board.skipped:
    if items:
      lines += [
        "",
        f"{title}: {len(items)}",
        *(f"- {s.path}: {' '.join(s.reason.split())}" for s in items),
      ]
  return text + "".join(f"{line}\n" for line in lines)


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
      f"{columns[0]}_ci95_low",
      f"{columns[0]}_ci95_high",
      "baseline",
      "difference",
      "difference_low",
      "difference_high",
      "p_value",
      "num_params",
      "wall_seconds_mean",
      "train_tokens_per_second_mean",
    ]
  )
  for e in board.entries:
    stats = [e.metrics[m] for m in board.columns]
    c = e.comparison
    tested = c is not None and e.name != board.baseline
    writer.writerow(
      _blank_none(
        [
          e.rank,
          e.name,
          len(e.runs),
          *(v for s in stats for v in (s.mean, s.std)),
          c and c.mean - c.ci,
          c and c.mean + c.ci,
          int(e.name == board.baseline),
          *((c.difference, *c.difference_interval, c.p_value) if tested else [None] * 4),
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
td:not(.text) { white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[data-order=asc]::after { content: " ▲"; } th[data-order=desc]::after { content: " ▼"; }
td.text, th.text { text-align: left; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #222; }
svg.chart .seed { fill: #222; fill-opacity: .55; }
svg.chart .mean { stroke: #222; stroke-width: 2.5; }
svg.chart .ci { stroke-width: 7; stroke-linecap: butt; stroke-opacity: .45; stroke: #999; }
svg.chart .ci.better { stroke: #1f5fbf; } svg.chart .ci.worse { stroke: #c62828; }
svg.chart .baseline { stroke: #555; stroke-dasharray: 4 3; }
svg.chart .axis { stroke: #aaa; }
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
    c = entry.comparison
    tested = c is not None and entry.name != board.baseline
    tests = [c and c.mean, c.difference if tested else None, c.p_value if tested else None]
    values = [
      entry.rank,
      entry.name,
      entry.metrics[ranked].mean,
      *(tests if board.baseline else ()),
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
    for title, items in board.skipped
    if items
  )
  title = e(f"Leaderboard: {board.split}.{ranked}")
  captions = "".join(f"<p>{e(line)}</p>" for line in _test_caption(board))
  return (
    f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
    f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    f'<table class="leaderboard">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
    + "\n".join(rows)
    + f"\n</tbody>\n</table>\n{captions}\n{_chart(board)}\n{skipped}\n"
    f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
  )


_CHART_LABEL, _CHART_PLOT, _CHART_ROW = 300, 480, 24  # px: label column, plot width, row


def _short_name(name: str, width: int = 44) -> str:
  """A variant's name for a chart label: each `a.b.key=value` as `key=value`, then cut."""
  parts = []
  for part in name.split(", "):
    key, equals, value = part.partition("=")
    parts.append(f"{key.rpartition('.')[2]}={value}" if equals else part)
  short = ", ".join(parts)
  return short if len(short) <= width else short[: width - 1] + "…"


def _tick_step(span: float) -> float:
  """A step of 1, 2 or 5 × 10^k giving 3 to 7 ticks over `span`."""
  magnitude = 10 ** math.floor(math.log10(span / 5))
  return next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= 7)


def _chart(board: Leaderboard) -> str:
  """An inline SVG, one line per variant in rank order: each seed's value (dots), the
  mean over seeds (a tick), the bootstrap 95% interval of the mean (a bar: blue where the
  variant is significantly better than the baseline, red where worse, grey otherwise) and
  the baseline's mean (a dashed line)."""
  e, metric = html.escape, board.metric
  points = {
    entry.name: [v for v in entry.values(board.split, metric) if math.isfinite(v)]
    for entry in board.entries
  }
  bounds = [v for values in points.values() for v in values]
  for entry in board.entries:
    if entry.comparison is not None:
      c = entry.comparison
      bounds += [c.mean - c.ci, c.mean + c.ci]
  bounds = [b for b in bounds if math.isfinite(b)]
  if not bounds:
    return ""
  low, high = min(bounds), max(bounds)
  pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
  low, high = low - pad, high + pad

  def x(value: float) -> float:
    return _CHART_LABEL + (value - low) / (high - low) * _CHART_PLOT

  higher = HIGHER_IS_BETTER[metric]
  parts, height = [], _CHART_ROW * (len(board.entries) + 2)
  for i, entry in enumerate(board.entries):
    y = _CHART_ROW * (i + 0.5)
    name, short = e(entry.name), e(_short_name(entry.name))
    parts.append(
      f'<text x="{_CHART_LABEL - 8}" y="{y + 4:.1f}" text-anchor="end">'
      f"<title>{name}</title>{short}</text>"
    )
    c = entry.comparison
    if c is not None:
      verdict = "ns"
      if entry.name == board.baseline:
        verdict = "base"
      elif c.p_value < significance.LEVEL:
        verdict = "better" if (c.difference > 0) == higher else "worse"
      parts.append(
        f'<line class="ci {verdict}" data-variant="{name}" x1="{x(c.mean - c.ci):.2f}" '
        f'x2="{x(c.mean + c.ci):.2f}" y1="{y:.1f}" y2="{y:.1f}"/>'
      )
    mean = entry.metrics[metric].mean
    if mean is not None and math.isfinite(mean):
      parts.append(
        f'<line class="mean" data-variant="{name}" data-value="{mean!r}" x1="{x(mean):.2f}" '
        f'x2="{x(mean):.2f}" y1="{y - 7:.1f}" y2="{y + 7:.1f}"/>'
      )
    parts += [
      f'<circle class="seed" data-variant="{name}" data-value="{v!r}" cx="{x(v):.2f}" '
      f'cy="{y:.1f}" r="3.5"/>'
      for v in points[entry.name]
    ]
  baseline = next((b for b in board.entries if b.name == board.baseline), None)
  if baseline is not None and math.isfinite(baseline.metrics[metric].mean or math.nan):
    xb = x(baseline.metrics[metric].mean)
    parts.append(
      f'<line class="baseline" x1="{xb:.2f}" x2="{xb:.2f}" y1="0" '
      f'y2="{_CHART_ROW * len(board.entries):.1f}"/>'
    )
  axis_y = _CHART_ROW * len(board.entries) + 4
  parts.append(
    f'<line class="axis" x1="{_CHART_LABEL}" x2="{_CHART_LABEL + _CHART_PLOT}" '
    f'y1="{axis_y}" y2="{axis_y}"/>'
  )
  step = _tick_step(high - low)
  decimals = max(0, -math.floor(math.log10(step)))
  for k in range(math.ceil(low / step), math.floor(high / step) + 1):
    parts.append(
      f'<text x="{x(k * step):.1f}" y="{axis_y + 16}" text-anchor="middle">'
      f"{e(number(k * step, decimals))}</text>"
    )
  legend = f"{board.split}.{metric}: dots are seeds, a tick their mean" + (
    f", a bar the 95% interval of the mean; the dashed line is the baseline's mean. A "
    f"bar's colour is the paired test against the baseline (blue: better at p < "
    f"{significance.LEVEL}, red: worse, grey: not significant), which resamples both on "
    "the same sentences: it can be significant where the bars overlap."
    if board.baseline
    else "."
  )
  width = _CHART_LABEL + _CHART_PLOT + 20
  return (
    f"<h2>{e(board.split)}.{e(metric)} by variant</h2>\n<p>{e(legend)}</p>\n"
    f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
    f'height="{height}" viewBox="0 0 {width} {height}">\n' + "\n".join(parts) + "\n</svg>"
  )


def _run_links(run: Run, split: str, link_base: str) -> str:
  """`seed N`, linking the run's BLEU-by-length plot and heatmaps of `split` where present."""
  run_seed = seed(run)
  parts = [html.escape(f"seed {run_seed}" if run_seed is not None else os.path.basename(run.path))]
  for label, target in (
    ("BLEU by length", os.path.join(run.path, f"bleu_by_length.{split}.png")),
    ("heatmaps", os.path.join(run.path, runs.HEATMAPS, split)),
  ):
    if os.path.exists(target):
      href = urllib.parse.quote(os.path.relpath(target, link_base).replace(os.sep, "/"))
      if os.path.isdir(target):
        href += "/"
      parts.append(f'<a href="{html.escape(href)}">{html.escape(label)}</a>')
  return " · ".join(parts)
