import csv
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

from attn_research.errors import ConfigError
from attn_research.evaluation import leaderboard
from tests.conftest import REPO

# variant → (score, alignment, per seed: (test BLEU, test ppl)); BLEU and ppl rank differently.
VARIANTS = {
  "a": ("general", "global", [(20.0, 3.0), (21.5, 3.2), (19.0, 2.9)]),
  "b": ("dot", "local_p", [(30.0, 2.5), (28.0, 2.6), (31.0, 2.4)]),
  "c": ("dot", "global", [(10.0, 1.5)]),
}
NAMES = {
  v: f"model.attention.score={score}, model.attention.alignment={alignment}"
  for v, (score, alignment, _) in VARIANTS.items()
}


def _config(score: str, alignment: str, seed: int) -> dict:
  return {
    "seed": seed,
    "dataset": {"name": "dates", "data_dir": f"/data/{seed}"},  # ignored by the grouping
    "model": {"attention": {"score": score, "alignment": alignment, "window": 10}},
    "eval": {"splits": ["validation", "test"]},
  }


def _split_metrics(bleu: float, ppl: float, with_aer: bool) -> dict:
  metrics = {
    "loss": float(np.log(ppl)),
    "ppl": ppl,
    "exact_match": bleu / 100,
    "bleu": bleu,
    "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0",
    "tokenized_bleu": bleu + 1,
    "chrf": bleu + 10,
    "num_examples": 64,
    "bleu_by_length": [{"min_length": 1, "max_length": 10, "num_examples": 64, "bleu": bleu}],
  }
  return {**metrics, "aer": 1 - bleu / 100} if with_aer else metrics


def _write(path, name: str, data: dict) -> None:
  path.mkdir(parents=True, exist_ok=True)
  (path / name).write_text(json.dumps(data))


@pytest.fixture
def sweep(tmp_path):
  """3 variants (3, 3 and 1 seeds; b nested one level deeper), 1 unfinished, 1 failed."""
  root = tmp_path / "sweep"
  for variant, (score, alignment, seeds) in VARIANTS.items():
    for seed, (bleu, ppl) in enumerate(seeds):
      run = root / ("nested" if variant == "b" else "") / f"{variant}_s{seed}"
      _write(
        run,
        "result.json",
        {
          "status": "completed",
          "config": _config(score, alignment, seed),
          "num_params": 1000 + ord(variant),
          "wall_seconds": 60.0 + seed,
          "train_tokens_per_second": 5000.0 + 10 * seed,
          "metrics": {
            "validation": _split_metrics(bleu - 1, ppl + 0.1, False),
            "test": _split_metrics(bleu, ppl, variant == "a"),
          },
        },
      )
      (run / "bleu_by_length.test.png").write_bytes(b"\x89PNG")
      _write(run / "heatmaps" / "test", "00000.png", {})  # not a run: below a run directory
      _write(run / "heatmaps" / "test", "config.json", {})
  _write(root / "d_s0", "config.json", _config("location", "global", 0))
  _write(root / "e_s0", "failed.json", {"error": "ConfigError: window <b>too</b> large"})
  return root


def test_collect_and_group_pool_seeds_into_variants(sweep):
  collection = leaderboard.collect([str(sweep)])
  assert len(collection.runs) == 7
  assert [os.path.basename(s.path) for s in collection.unfinished] == ["d_s0"]
  assert collection.unfinished[0].reason == "no result.json"
  assert [os.path.basename(s.path) for s in collection.failed] == ["e_s0"]
  groups = leaderboard.group(collection.runs)
  assert {name: len(runs) for name, runs in groups.items()} == {
    NAMES["a"]: 3,
    NAMES["b"]: 3,
    NAMES["c"]: 1,
  }
  assert {os.path.basename(r.path)[0] for r in groups[NAMES["b"]]} == {"b"}


def test_single_variant_is_named_after_its_directory(sweep):
  runs = leaderboard.collect([str(sweep)]).runs
  assert list(leaderboard.group([r for r in runs if "/a_s" in r.path])) == ["sweep"]


def test_mean_and_sample_std_match_numpy(sweep):
  board = leaderboard.rank(leaderboard.collect([str(sweep)]), "test.bleu")
  assert board.columns == ["bleu", "chrf", "exact_match", "ppl", "aer"]
  for entry in board.entries:
    variant = os.path.basename(entry.runs[0].path)[0]
    bleu, ppl = np.array(VARIANTS[variant][2]).T
    assert entry.metrics["bleu"].mean == pytest.approx(np.mean(bleu))
    assert entry.metrics["ppl"].mean == pytest.approx(np.mean(ppl))
    if len(bleu) > 1:
      assert entry.metrics["bleu"].std == pytest.approx(np.std(bleu, ddof=1))
      assert entry.wall_seconds.mean == pytest.approx(61.0)
    else:
      assert entry.metrics["bleu"].std is None
    assert (entry.metrics["aer"].mean is None) == (variant != "a")
    assert [r.result["config"]["seed"] for r in entry.runs] == list(range(len(bleu)))


def test_bleu_ranks_higher_first_and_ppl_lower_first(sweep):
  collection = leaderboard.collect([str(sweep)])
  by_bleu = leaderboard.rank(collection, "test.bleu")
  by_ppl = leaderboard.rank(collection, "test.ppl")
  assert [e.name for e in by_bleu.entries] == [NAMES["b"], NAMES["a"], NAMES["c"]]
  assert [e.name for e in by_ppl.entries] == [NAMES["c"], NAMES["b"], NAMES["a"]]
  assert [e.rank for e in by_ppl.entries] == [1, 2, 3]
  by_aer = leaderboard.rank(collection, "test.aer")  # variants without it come last
  assert by_aer.entries[0].name == NAMES["a"]


def test_unknown_metric_or_split_lists_the_available_ones(sweep):
  collection = leaderboard.collect([str(sweep)])
  for metric in ("test.blue", "train.bleu", "bleu", "test.num_examples"):
    with pytest.raises(ConfigError, match=r"test\.bleu, test\.chrf") as error:
      leaderboard.rank(collection, metric)
    assert "validation.ppl" in str(error.value) and "validation.aer" not in str(error.value)


def test_missing_directory_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match="not a directory"):
    leaderboard.collect([str(tmp_path / "nope")])


def test_csv_parses_back_unrounded(sweep):
  board = leaderboard.rank(leaderboard.collect([str(sweep)]), "test.bleu")
  rows = list(csv.DictReader(io.StringIO(leaderboard.render(board, "csv"))))
  assert [row["variant"] for row in rows] == [NAMES["b"], NAMES["a"], NAMES["c"]]
  b, _, c = rows
  assert float(b["test.bleu_mean"]) == pytest.approx(np.mean([30.0, 28.0, 31.0]))
  assert float(b["test.bleu_std"]) == pytest.approx(np.std([30.0, 28.0, 31.0], ddof=1))
  assert (c["seeds"], c["test.bleu_std"], c["test.aer_mean"]) == ("1", "", "")
  assert float(c["test.ppl_mean"]) == 1.5 and int(c["num_params"]) == 1000 + ord("c")


def test_markdown_has_a_row_per_variant_and_lists_skipped_runs(sweep):
  board = leaderboard.rank(leaderboard.collect([str(sweep)]), "test.bleu")
  text = leaderboard.render(board, "markdown")
  table = [line for line in text.splitlines() if line.startswith("|")]
  assert len(table) == 2 + 3
  assert table[0].startswith("| rank | variant | test.bleu | seeds | chrf |")
  assert "| 29.67 ± 1.53 | 3 |" in table[2] and "| 10.00 ± — | 1 |" in table[4]
  assert "Unfinished: 1" in text and "Failed: 1" in text and "window <b>too</b> large" in text


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.tags, self.hrefs, self.scripts, self.text = [], [], [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.hrefs += [v for k, v in attrs if k in ("href", "src")]

  def handle_data(self, data):
    (self.scripts if self.tags and self.tags[-1] == "script" else self.text).append(data)


def test_html_is_self_contained_sortable_and_links_relative_to_output(sweep, tmp_path):
  out_dir = tmp_path / "reports" / "html"
  board = leaderboard.rank(leaderboard.collect([str(sweep)]), "test.bleu")
  page = _Page()
  page.feed(leaderboard.render(board, "html", str(out_dir)))
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


def test_cli_writes_csv(sweep):
  result = subprocess.run(
    [sys.executable, "-m", "experiments.leaderboard", str(sweep), "--format=csv"],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr
  rows = list(csv.DictReader(io.StringIO(result.stdout)))
  assert [(row["rank"], row["seeds"]) for row in rows] == [("1", "3"), ("2", "3"), ("3", "1")]
  assert "1 unfinished, 1 failed" in result.stderr


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
def test_html_sorts_on_header_clicks_in_headless_chromium(sweep, tmp_path, header, clicks, order):
  page = leaderboard.render(
    leaderboard.rank(leaderboard.collect([str(sweep)]), "test.bleu"), "html", str(tmp_path)
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
