import csv
import html.parser
import io
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
  path = tmp_path / "board.html"
  path.write_text(page.replace("</body>", _CLICK.format(header=header, clicks=clicks) + "</body>"))
  dom = subprocess.run(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert dom.returncode == 0, dom.stderr
  # Each row links its seed-0 run's plot first: the rows in the order the browser left them.
  rows = re.findall(r"sweep/(?:nested/)?([abc])_s0/bleu_by_length", dom.stdout)
  assert "".join(rows) == order
