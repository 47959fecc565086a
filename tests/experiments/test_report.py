import csv
import html
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from attn_research.evaluation import leaderboard
from experiments import report
from tests.conftest import NAMES, REPO


def test_csv_parses_back_unrounded(finished_sweep):
  board = leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu")
  rows = list(csv.DictReader(io.StringIO(report.render_leaderboard(board, "csv"))))
  assert [row["variant"] for row in rows] == [NAMES["b"], NAMES["a"], NAMES["c"]]
  b, _, c = rows
  assert float(b["test.bleu_mean"]) == pytest.approx(np.mean([30.0, 28.0, 31.0]))
  assert float(b["test.bleu_std"]) == pytest.approx(np.std([30.0, 28.0, 31.0], ddof=1))
  assert (c["seeds"], c["test.bleu_std"], c["test.aer_mean"]) == ("1", "", "")
  assert float(c["test.ppl_mean"]) == 1.5 and int(c["num_params"]) == 1000 + ord("c")


def test_markdown_has_a_row_per_variant_and_lists_skipped_runs(finished_sweep):
  board = leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu")
  text = report.render_leaderboard(board, "markdown")
  table = [line for line in text.splitlines() if line.startswith("|")]
  assert len(table) == 2 + 3
  assert table[0].startswith("| rank | variant | test.bleu | seeds | chrf |")
  assert "| 29.67 ± 1.53 | 3 |" in table[2] and "| 10.00 ± — | 1 |" in table[4]
  assert "Unfinished: 1" in text and "Failed: 1" in text and "window <b>too</b> large" in text
  assert "Diverged: 1" in text and "f_s0: the training loss is nan at step 40" in text


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.tags, self.hrefs, self.scripts, self.text = [], [], [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.hrefs += [v for k, v in attrs if k in ("href", "src")]

  def handle_data(self, data):
    (self.scripts if self.tags and self.tags[-1] == "script" else self.text).append(data)


def test_html_is_self_contained_sortable_and_links_relative_to_output(finished_sweep, tmp_path):
  out_dir = tmp_path / "reports" / "html"
  board = leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu")
  page = _Page()
  page.feed(report.render_leaderboard(board, "html", str(out_dir)))
  page.close()
  assert page.tags.count("tr") == 1 + 3 and "b" not in page.tags  # the error text is escaped
  assert "window <b>too</b> large" in "".join(page.text)
  assert "addEventListener" in "".join(page.scripts) and ".sort(" in "".join(page.scripts)
  assert "link" not in page.tags and not any("//" in h for h in page.hrefs)
  assert "../../sweep/a_s0/bleu_by_length.test.png" in page.hrefs
  assert "../../sweep/nested/b_s2/heatmaps/test/" in page.hrefs
  assert len(page.hrefs) == 2 * 7
  for href in page.hrefs:
    assert os.path.exists(os.path.normpath(os.path.join(out_dir, href)))


def test_cli_writes_csv(finished_sweep):
  result = subprocess.run(
    [sys.executable, "-m", "experiments.leaderboard", str(finished_sweep), "--format=csv"],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr
  rows = list(csv.DictReader(io.StringIO(result.stdout)))
  assert [(row["rank"], row["seeds"]) for row in rows] == [("1", "3"), ("2", "3"), ("3", "1")]
  assert "1 unfinished, 1 diverged, 1 failed" in result.stderr


def _dump_dom(directory, page: str) -> str:
  """The DOM headless Chromium leaves after loading `page` (and running its scripts)."""
  path = directory / "board.html"
  path.write_text(page)
  dom = subprocess.run(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert dom.returncode == 0, dom.stderr
  return dom.stdout


# Clicks, after the page has loaded, the header whose text starts with `header`.
_CLICK = (
  '<script>window.addEventListener("load", () => {{ const th = [...document.querySelectorAll('
  '"table.leaderboard th")].find(h => h.textContent.startsWith("{header}")); '
  "for (let i = 0; i < {clicks}; i++) th.click(); }});</script>"
)


@pytest.mark.skipif(
  shutil.which("chromium") is None, reason="needs Debian's chromium: apt-get install chromium"
)
@pytest.mark.parametrize(
  ("header", "clicks", "order"),
  [
    ("rank", 0, "bac"),  # as ranked by test.bleu
    ("ppl", 1, "cba"),  # ascending
    ("ppl", 2, "abc"),  # descending
    ("aer", 1, "abc"),  # only a has AER; blanks stay last in either direction
    ("aer", 2, "abc"),
  ],
)
def test_html_sorts_on_header_clicks_in_headless_chromium(
  finished_sweep, tmp_path, header, clicks, order
):
  page = report.render_leaderboard(
    leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu"), "html", str(tmp_path)
  )
  dom = _dump_dom(
    tmp_path, page.replace("</body>", _CLICK.format(header=header, clicks=clicks) + "</body>")
  )
  # Each row links its seed-0 run's plot first: the rows in the order the browser left them.
  rows = re.findall(r"sweep/(?:nested/)?([abc])_s0/bleu_by_length", dom)
  assert "".join(rows) == order


def test_csv_and_markdown_carry_the_tests_against_the_baseline(tested_sweep):
  board = leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match", "general")
  rows = {
    r["variant"].split("=")[1]: r
    for r in csv.DictReader(io.StringIO(report.render_leaderboard(board, "csv")))
  }
  tested = {e.name.split("=")[1]: e.comparison for e in board.entries}
  assert (rows["general"]["baseline"], rows["general"]["p_value"]) == ("1", "")
  for name in ("location", "dot"):
    assert float(rows[name]["p_value"]) == tested[name].p_value
    assert float(rows[name]["difference"]) == tested[name].difference
    low, high = tested[name].difference_interval
    assert (float(rows[name]["difference_low"]), float(rows[name]["difference_high"])) == (
      low,
      high,
    )
    c = tested[name]
    interval = (
      float(rows[name]["test.exact_match_ci95_low"]),
      float(rows[name]["test.exact_match_ci95_high"]),
    )
    assert interval == (c.mean - c.ci, c.mean + c.ci)
  assert float(rows["location"]["p_value"]) < 0.05 < float(rows["dot"]["p_value"])
  text = report.render_leaderboard(board, "markdown")
  header, _, *lines = [line for line in text.splitlines() if line.startswith("|")]
  assert header.startswith(
    "| rank | variant | test.exact_match | 95% CI | vs baseline | p | seeds |"
  )
  location = lines[0].split(" | ")
  c = tested["location"]
  assert location[3] == f"{c.mean:.4f} ± {c.ci:.4f}"
  assert location[4].startswith(f"+{c.difference:.4f} [+") and location[5] == f"{c.p_value:.3f}"
  assert lines[1].split(" | ")[4:6] == ["baseline", "—"]
  assert "Baseline: model.attention.score=general." in text and "paired bootstrap" in text


# After load, writes each chart mark's variant, class, value and on-screen x centre.
_GEOMETRY = (
  '<script>window.addEventListener("load", () => { const marks = [...document.querySelectorAll('
  '"svg.chart line, svg.chart circle")].map(m => { const r = m.getBoundingClientRect(); '
  "return [m.dataset.variant || null, m.getAttribute('class'), m.dataset.value || null, "
  "r.left + r.width / 2, r.left, r.right]; }); const pre = document.createElement('pre'); "
  "pre.id = 'geometry'; pre.textContent = JSON.stringify(marks); document.body.append(pre); });"
  "</script>"
)


@pytest.mark.skipif(
  shutil.which("chromium") is None, reason="needs Debian's chromium: apt-get install chromium"
)
def test_html_chart_draws_seeds_means_and_intervals_in_headless_chromium(tested_sweep, tmp_path):
  """The drawn positions, as Chromium lays them out: seeds and means on one linear scale,
  the significant variant's interval clear of the baseline's line, the null one's across it."""
  board = leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match", "general")
  page = report.render_leaderboard(board, "html", str(tmp_path))
  dom = _dump_dom(tmp_path, page.replace("</body>", _GEOMETRY + "</body>"))
  marks = json.loads(html.unescape(re.search(r'<pre id="geometry">(.*?)</pre>', dom).group(1)))
  valued = [(float(value), x) for _, cls, value, x, _, _ in marks if value is not None]
  assert len(valued) == 3 * 2 + 3  # every seed and every mean
  (v0, x0), (v1, x1) = valued[0], next(p for p in valued if abs(p[0] - valued[0][0]) > 0.05)
  slope = (x1 - x0) / (v1 - v0)
  assert slope > 0
  for value, x in valued:
    assert x == pytest.approx(x0 + slope * (value - v0), abs=0.6)
  (baseline_x,) = [x for _, cls, _, x, _, _ in marks if cls == "baseline"]
  general = board.entries[1].metrics["exact_match"].mean
  assert baseline_x == pytest.approx(x0 + slope * (general - v0), abs=0.6)
  bars = {
    variant.split("=")[1]: (cls, left, right)
    for variant, cls, _, _, left, right in marks
    if cls and cls.startswith("ci")
  }
  assert bars["location"][0] == "ci better" and bars["location"][1] > baseline_x
  assert bars["dot"][0] == "ci ns" and bars["dot"][1] < baseline_x < bars["dot"][2]
  assert bars["general"][0] == "ci base"
  c = board.entries[0].comparison
  assert bars["location"][2] - bars["location"][1] == pytest.approx(2 * c.ci * slope, abs=1.0)
