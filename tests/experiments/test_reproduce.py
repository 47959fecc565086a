import json
import os
import sys

import jax
import numpy as np
import pytest

from attn_research import runs
from attn_research.config import files as config_files
from attn_research.errors import ConfigError
from attn_research.model import ModelConfig, Seq2Seq
from attn_research.training import experiment, parallel
from experiments import reproduce
from experiments.tables import TABLES, britz2017, luong2015
from experiments.tables import table as tables
from tests.conftest import run_module

# A stand-in for experiments.train: writes the result.json it is given, or fails.
FAKE_TRAIN = """
import json, sys
workdir, result = sys.argv[1], json.loads(sys.argv[2])
if result is None:
  sys.exit("error: the fake trial failed on purpose")
with open(workdir + "/result.json", "w") as f:
  json.dump(result, f)
"""


def _result(bleu: float, ppl: float, split: str = "test", **extra) -> dict:
  bins = [
    {"min_length": 1, "max_length": 10, "bleu": bleu + 1.0, "num_examples": 5},
    {"min_length": 11, "max_length": 20, "bleu": bleu - 1.0, "num_examples": 5},
  ]
  metrics = {"tokenized_bleu": bleu, "ppl": ppl, "bleu_by_length": bins, **extra}
  return {"status": "completed", "num_params": 1_234_567, "metrics": {split: metrics}}


def _fake(tmp_path, results: dict[str, dict | None]):
  """A trial command writing `results[trial name]` (None: the trial fails)."""
  script = tmp_path / "fake_train.py"
  script.write_text(FAKE_TRAIN)
  return lambda trial, workdir: [
    sys.executable,
    str(script),
    workdir,
    json.dumps(results[trial.name]),
  ]


def _row(markdown: str, label: str) -> list[str]:
  for line in markdown.splitlines():
    cells = [c.strip() for c in line.strip("|").split(" | ")]
    if cells[0] == label:
      return cells
  raise AssertionError(f"no row {label!r} in\n{markdown}")


@pytest.mark.parametrize("name", TABLES.names())
@pytest.mark.parametrize("scale", tables.SCALES)
def test_every_table_builds_valid_trials(name, scale):
  """make_trials checks keys and types; the trainer's checks and a model trace the rest
  (dataset availability aside: no data is loaded)."""
  table = TABLES.get(name)
  trials = tables.plan(table, scale)
  flat = [t for row in trials.values() for t in row]
  assert len({t.name for t in flat}) == len(flat)
  assert set(trials) == {r.name for r in table.rows if r.overrides is not None}
  base = config_files.load_config(table.setup(scale).config)
  mesh = parallel.make_mesh()
  models = set()
  for trial in flat:
    config = tables.trial_config(base, trial)
    experiment.validate(config, mesh.size)
    models.add(ModelConfig.from_config(config.model, 50, 60, config.data.source_buckets[-1]))
  if scale == "tiny":  # shapes only, but every layer is built
    for model in models:
      src = np.zeros((2, 16), np.int32)
      tgt = np.zeros((2, 17), np.int32)
      jax.eval_shape(
        lambda s, t, m=model: Seq2Seq(m).init(jax.random.key(0), s, s > 0, t), src, tgt
      )


def test_unknown_table_lists_the_names():
  with pytest.raises(ConfigError, match=r"Unknown paper table 'luong2015' for --table.*luong2015_"):
    TABLES.get("luong2015")


def test_cli_dry_run_lists_trials_and_unknown_table_fails(tmp_path):
  result = run_module(
    "experiments.reproduce",
    "--table=luong2015_table4",
    "--scale=tiny",
    f"--root={tmp_path}",
    "--dry_run",
  )
  assert result.returncode == 0, result.stderr
  assert "luong2015_table4 at scale tiny: 21 trials (0 finished)" in result.stdout  # 3 seeds
  assert "# local-p (general) — local_p-general_seed=2\n" in result.stdout
  assert f"--workdir={tmp_path}/luong2015_table4/tiny/global-dot_seed=1 " in result.stdout
  assert "--config.seed=2\n" in result.stdout
  assert "--config.model.attention.score=location" in result.stdout
  assert not os.listdir(tmp_path)
  result = run_module("experiments.reproduce", "--table=nope", "--scale=tiny", f"--root={tmp_path}")
  assert result.returncode != 0
  assert "error: Unknown paper table 'nope' for --table. Valid names: luong2015_table1" in (
    result.stderr
  )


def test_table4_ours_beside_paper_with_failed_and_missing_trials(tmp_path):
  table = luong2015.TABLE4
  trials = tables.plan(table, "tiny", seeds=1)
  results = {
    "global-location": _result(3.5, 40.25),
    "global-dot": _result(4.125, 38.5),
    "global-general": None,  # fails
    "local_m-dot": _result(2.0, 45.0),
    "local_m-general": _result(4.0, 39.0),
    "local_p-dot": _result(3.0, 41.0),
  }  # local_p-general never runs
  run = {row: ts for row, ts in trials.items() if row != "local_p-general"}
  summary, _ = reproduce.run(table, "tiny", run, str(tmp_path), command=_fake(tmp_path, results))
  assert summary.failed == ["global-general"]
  markdown = tables.write(table, "tiny", trials, str(tmp_path))
  assert (tmp_path / "luong2015_table4.md").read_text() == markdown

  header = _row(markdown, "system")
  assert header[1:4] == [
    "paper: ppl (WMT'14 En→De newstest2014)",
    "paper: tokenized BLEU (WMT'14 En→De newstest2014)",
    "paper: tokenized BLEU + unk replace (WMT'14 En→De newstest2014)",
  ]
  assert header[4:] == [
    "ours: tokenized BLEU (debian_l10n/en-de, test)",
    "ours: ppl (debian_l10n/en-de, test)",
    "runs",
  ]
  assert _row(markdown, "global (dot)") == [
    "global (dot)",
    "6.1",
    "18.6",
    "20.5 (+1.9)",
    "4.12",
    "38.50",
    "1/1",
  ]
  assert _row(markdown, "local-p (general)")[1:] == ["5.9", "19", "20.9 (+1.9)", "—", "—", "0/1"]
  assert _row(markdown, "global (general)")[4:] == ["—", "—", "0/1"]
  assert "**global (general)** (`global-general`): failed: error: the fake trial failed" in markdown
  assert "**local-p (general)** (`local_p-general`): not run yet" in markdown
  assert "not expected to match" in markdown
  assert not os.path.exists(tmp_path / "luong2015_table4.png")  # no figure for Table 4


def test_seeds_give_mean_and_sample_std(tmp_path):
  table = britz2017.TABLE
  trials = tables.plan(table, "tiny")
  rng = np.random.default_rng(0)
  results = {
    t.name: _result(float(rng.uniform(5, 15)), float(rng.uniform(20, 60)))
    for row in trials.values()
    for t in row
  }
  reproduce.run(table, "tiny", trials, str(tmp_path), command=_fake(tmp_path, results))
  markdown = (tmp_path / "britz2017_attention.md").read_text()
  bleu = [results[f"additive-512_seed={s}"]["metrics"]["test"]["tokenized_bleu"] for s in (0, 1)]
  cells = _row(markdown, "Add-512")
  assert cells[1:3] == ["22.47 ± 0.27 (22.79)", "66.33M"]
  assert cells[3] == f"{np.mean(bleu):.2f} ± {np.std(bleu, ddof=1):.2f}"
  assert cells[5] == "1.23 ± 0.00" and cells[6] == "2/2"
  assert "mean ± std over 2 seeds" in markdown


def test_missing_metric_is_not_applicable(tmp_path):
  table = luong2015.TABLE6
  trials = tables.plan(table, "tiny", seeds=1)
  results = {
    "global-location": _result(1.0, 2.0, exact_match=0.5),
    "local_m-general": _result(1.0, 2.0, exact_match=0.625, aer=0.125),
    "local_p-general": _result(1.0, 2.0, exact_match=0.75, aer=0.25),
  }
  reproduce.run(table, "tiny", trials, str(tmp_path), command=_fake(tmp_path, results))
  markdown = (tmp_path / "luong2015_table6.md").read_text()
  assert _row(markdown, "global (location)")[1:] == ["0.39", "n/a", "0.500", "1/1"]
  assert _row(markdown, "local-m (general)")[1:] == ["0.34", "0.125", "0.625", "1/1"]
  assert "ours: AER (synthetic/swap, test)" in markdown


def test_bahdanau_figure_and_length_filtered_rows(tmp_path):
  table = TABLES.get("bahdanau2015_table1")
  trials = tables.plan(table, "tiny", seeds=1)
  assert list(trials) == [
    "rnnencdec-30",
    "rnnsearch-30",
    "rnnencdec-50",
    "rnnsearch-50",
    "rnnsearch-50-longer",
  ]
  base = config_files.load_config(table.setup("tiny").config)
  configs = {name: tables.trial_config(base, t[0]) for name, t in trials.items()}
  assert [c.data.max_train_words for c in configs.values()] == [30, 30, 50, 50, 50]
  steps = configs["rnnsearch-50"].train.num_steps
  assert configs["rnnsearch-50-longer"].train.num_steps == 2 * steps
  results = {name: _result(10.0 + i, 30.0) for i, name in enumerate(trials)}
  summary, markdown = reproduce.run(
    table, "tiny", trials, str(tmp_path), command=_fake(tmp_path, results)
  )
  assert len(summary.completed) == 5
  png = tmp_path / "bahdanau2015_table1.png"
  assert png.read_bytes().startswith(b"\x89PNG")
  assert "![BLEU by source length" in markdown and "(bahdanau2015_table1.png)" in markdown
  assert _row(markdown, "RNNencdec-30")[1:4] == ["13.93", "24.19", "10.00"]
  assert _row(markdown, "RNNsearch-50")[1:4] == ["26.75", "34.16", "13.00"]
  assert _row(markdown, "Moses")[1:] == ["33.30", "35.63", "—", "—", "not run"]

  # Rerunning skips the finished trials and leaves their numbers.
  summary, again = reproduce.run(table, "tiny", trials, str(tmp_path), command=None)
  assert len(summary.skipped) == 5 and again == markdown


def test_fetch_downloads_only_what_can_be_fetched(tmp_path, monkeypatch):
  from attn_research.data import datasets

  fetched, loaded = [], []
  monkeypatch.setattr(
    datasets.Dataset, "fetch", lambda self: fetched.append((self.name, self.data_dir))
  )
  monkeypatch.setattr(datasets.Dataset, "load", lambda self: loaded.append(self.name))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  for name in ("luong2015_table4", "textbook_dates"):
    table = TABLES.get(name)
    flat = [t for row in tables.plan(table, "tiny").values() for t in row]
    reproduce.prepare_data(table, "tiny", flat, fetch=True)
  assert fetched == [("debian_l10n/en-de", str(tmp_path))]
  assert loaded == ["debian_l10n/en-de", "dates"]


def test_stale_trial_directory_is_refused(tmp_path):
  table = TABLES.get("textbook_dates")
  trials = tables.plan(table, "tiny", seeds=1)
  trial = trials["attention"][0]
  root = reproduce.sweep_root(str(tmp_path), table, "tiny")
  config = tables.trial_config(config_files.load_config(table.setup("tiny").config), trial)
  config.train.num_steps = 123
  os.makedirs(trial.workdir(root))
  with open(os.path.join(trial.workdir(root), "config.json"), "w") as f:
    json.dump(config.to_dict(), f)
  with pytest.raises(ConfigError, match=r"holds a run of another config .*train.num_steps"):
    reproduce.run(table, "tiny", trials, str(tmp_path), command=None)


def _exact_match_run(workdir: str, share: float, seed: int, n: int = 400) -> None:
  """A finished run whose `share` of n sentences (at random) are right, with its statistics."""
  from attn_research.evaluation import significance

  right = np.random.default_rng(seed).permutation(n) < round(share * n)
  rows = np.stack([right, np.ones(n)], axis=1).astype(np.float64)
  os.makedirs(workdir, exist_ok=True)
  runs.write_json(
    os.path.join(workdir, runs.RESULT),
    {"status": "completed", "metrics": {"test": {"exact_match": right.mean(), "ppl": 1.5}}},
  )
  significance.save(
    os.path.join(workdir, "statistics.test.npz"),
    significance.SentenceStatistics(
      significance.fingerprint([str(i) for i in range(n)]), {"exact_match": rows}
    ),
  )


@pytest.mark.parametrize(
  ("seq2seq", "verdict"), [(0.6, "disagrees"), (0.31, "not significant"), (0.1, "agrees")]
)
def test_claims_get_verdicts_from_a_paired_bootstrap_of_the_seeds(tmp_path, seq2seq, verdict):
  from attn_research.evaluation import metrics, significance

  table = TABLES.get("textbook_dates")
  trials = tables.plan(table, "tiny", seeds=2)
  root = reproduce.sweep_root(str(tmp_path), table, "tiny")
  shares = {"attention": 0.9, "peeky": 0.3, "seq2seq": seq2seq}
  for row, row_trials in trials.items():
    for i, trial in enumerate(row_trials):
      _exact_match_run(trial.workdir(root), shares[row] + 0.01 * i, 10 * len(row) + i)
  rendered = tables.render(table, "tiny", trials, root)
  attention, peeky = rendered.verdicts
  assert attention.verdict == "agrees" and attention.comparison.p_value < 0.01
  assert peeky.verdict == verdict
  stats = {
    row: [np.load(f"{t.workdir(root)}/statistics.test.npz")["exact_match"] for t in ts]
    for row, ts in trials.items()
  }
  expected = significance.paired_bootstrap(
    stats["seq2seq"], stats["peeky"], metrics.SCORES["exact_match"]
  )
  assert peeky.comparison == expected
  line = _row(rendered.markdown, "peeky seq2seq beats seq2seq")
  pairs = zip(stats["peeky"], stats["seq2seq"], strict=True)
  low, high = expected.difference_interval
  assert line[1:] == [
    "exact match",
    "(order only)",
    f"{expected.score:.3f} vs {expected.baseline:.3f}",
    f"{expected.difference:+.3f} [{low:+.3f}, {high:+.3f}]",
    f"{expected.p_value:.3f}",
    f"{sum(a[:, 0].sum() > b[:, 0].sum() for a, b in pairs)} of 2",  # seed by seed
    verdict,
  ]
  assert "mean ± std over 2 seeds" in rendered.markdown


def test_a_claim_without_statistics_says_how_to_get_them(tmp_path):
  table = TABLES.get("textbook_dates")
  trials = tables.plan(table, "tiny", seeds=1)
  results = {name: _result(1.0, 2.0, exact_match=0.5) for name in ("seq2seq", "peeky", "attention")}
  results["attention"] = None  # fails
  reproduce.run(table, "tiny", trials, str(tmp_path), command=_fake(tmp_path, results))
  attention, peeky = tables.render(
    table, "tiny", trials, reproduce.sweep_root(str(tmp_path), table, "tiny")
  ).verdicts
  assert attention.verdict == "no test: a row has no finished run"
  assert peeky.verdict.startswith("no test: ") and "statistics.test.npz is missing" in peeky.verdict
  assert "experiments.evaluate --workdir=" in peeky.verdict


def test_seeds_default_to_three_at_tiny_scale_unless_a_table_or_the_flag_says_otherwise():
  table4, britz = luong2015.TABLE4, britz2017.TABLE
  assert [tables.num_seeds(table4, s) for s in tables.SCALES] == [3, 1, 1]
  assert tables.num_seeds(britz, "tiny") == britz2017.TINY_SEEDS == 2
  assert tables.num_seeds(britz, "tiny", 5) == 5
  names = [t.name for t in tables.plan(table4, "tiny", seeds=1)["global-dot"]]
  assert names == ["global-dot"]  # one seed: the config's own, no suffix
  with pytest.raises(ConfigError, match=r"--seeds=-1: pass a number of seeds ≥ 1, or 0"):
    tables.plan(table4, "tiny", seeds=-1)


def test_trials_launch_seed_by_seed_so_later_seeds_find_their_programs_compiled():
  table = TABLES.get("textbook_dates")
  order = [t.name for t in tables.launch_order(tables.plan(table, "tiny", seeds=2))]
  assert order == [
    "seq2seq_seed=0",
    "peeky_seed=0",
    "attention_seed=0",
    "seq2seq_seed=1",
    "peeky_seed=1",
    "attention_seed=1",
  ]


def test_a_significant_difference_that_the_seeds_do_not_share_is_flagged(tmp_path):
  table = TABLES.get("textbook_dates")
  trials = tables.plan(table, "tiny", seeds=2)
  root = reproduce.sweep_root(str(tmp_path), table, "tiny")
  shares = {"attention": (0.9, 0.9), "peeky": (0.6, 0.2), "seq2seq": (0.3, 0.3)}
  for row, row_trials in trials.items():
    for i, trial in enumerate(row_trials):
      _exact_match_run(trial.workdir(root), shares[row][i], 10 * len(row) + i)
  attention, peeky = tables.render(table, "tiny", trials, root).verdicts
  assert (attention.verdict, attention.seeds) == ("agrees", (2, 2))
  assert peeky.comparison.p_value < 0.05 and peeky.seeds == (2, 1)  # 0.40 vs 0.30, pooled
  assert peeky.verdict == "agrees (seeds split)"


# ----------------------------------------------------------------------------------------
# Docs pages (`--docs`): the page of a run, from fake trials (nothing trains).


def _finished_trials(table, scale: str, root: str, seeds: int = 1) -> dict:
  """`plan`'s trials, each given a completed result.json under ROOT/<table>/<scale>."""
  trials = tables.plan(table, scale, seeds)
  run_root = reproduce.sweep_root(root, table, scale)
  for i, trial in enumerate(t for row in trials.values() for t in row):
    os.makedirs(trial.workdir(run_root))
    result = {**_result(10.0 + i, 30.0, exact_match=0.5), "wall_seconds": 20.0 + i}
    runs.write_json(os.path.join(trial.workdir(run_root), runs.RESULT), result)
  return trials


def test_docs_page_has_the_command_machine_date_wall_time_and_the_table(tmp_path):
  import datetime

  from experiments.tables import pages

  table, root, docs = TABLES.get("bahdanau2015_table1"), tmp_path / "runs", tmp_path / "docs"
  trials = _finished_trials(table, "tiny", str(root))
  summary, markdown = reproduce.run(table, "tiny", trials, str(root), command=None)
  given = [("table", table.name), ("scale", "tiny"), ("root", "runs/t"), ("fetch", True)]
  invocation = pages.Invocation(pages.command(given), 125.4, summary)
  now = datetime.datetime(2026, 12, 8, 9, 30, tzinfo=datetime.UTC)
  written = pages.write(str(docs), table, "tiny", trials, str(root), markdown, invocation, now)

  assert written == [str(docs / f"{table.name}.md"), str(docs / f"{table.name}.png")]
  page = (docs / f"{table.name}.md").read_text()
  assert page.endswith("\n\n" + (root / f"{table.name}.md").read_text())  # the table, as is
  head = page[: -len(markdown)]
  command = (
    ".venv/bin/python -m experiments.reproduce --table=bahdanau2015_table1 --scale=tiny "
    "--root=runs/t --fetch"
  )
  assert f"# {table.title}\n\nmeasured 2026-12-08 09:30 UTC on {pages.machine()}; " in head
  assert f"regenerate with:\n\n```bash\n{command}\n```\n" in head
  assert pages.machine().endswith(", no GPU (XLA CPU), jax " + jax.__version__)
  assert " cores, " in pages.machine()
  # 5 trials of 20 … 24 s, skipped here as finished.
  assert "Wall time of this invocation: 2 min 5 s (125 s); its trials: 0 completed, 5 skipped" in (
    head
  )
  assert "The 5 finished trials' own wall times (`wall_seconds` in their result.json) sum to " in (
    head
  )
  assert "sum to 1 min 50 s (110 s), 20–24 s each.\n" in head
  assert f"]({table.name}.png)" in markdown  # the figure, copied beside the page
  assert (docs / f"{table.name}.png").read_bytes() == (root / f"{table.name}.png").read_bytes()


def _main(monkeypatch, **given: str) -> None:
  """`reproduce.main` as if run with `given` flags, its data preparation and GPUs stubbed."""
  from absl import flags
  from absl.testing import flagsaver

  monkeypatch.setattr(reproduce, "prepare_data", lambda *args, **kwargs: None)
  monkeypatch.setattr(reproduce.local, "visible_gpus", lambda: [])
  parsed = flags.FLAGS.is_parsed()
  flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.as_parsed(**given):
      reproduce.main(["reproduce"])
  finally:
    if not parsed:
      flags.FLAGS.unparse_flags()


def test_docs_flag_writes_the_page_of_the_run_and_its_absence_none(tmp_path, monkeypatch):
  table = TABLES.get("textbook_dates")
  root, docs = tmp_path / "runs", tmp_path / "docs" / "papers"
  _finished_trials(table, "tiny", str(root))
  flags = {"table": table.name, "scale": "tiny", "root": str(root), "seeds": "1"}
  _main(monkeypatch, **flags)
  assert (root / "textbook_dates.md").exists() and not (tmp_path / "docs").exists()

  _main(monkeypatch, docs=str(docs), fetch="false", **flags)  # given in another order
  page = (docs / "textbook_dates.md").read_text()
  command = (
    f".venv/bin/python -m experiments.reproduce --table=textbook_dates --scale=tiny "
    f"--root={root} --seeds=1 --nofetch --docs={docs}"
  )
  assert f"\n```bash\n{command}\n```\n" in page
  assert "; its trials: 0 completed, 3 skipped (already finished), 0 failed. The 3 " in page
  assert page.endswith("\n\n" + (root / "textbook_dates.md").read_text())
  assert os.listdir(docs) == ["textbook_dates.md"]  # no figure for this table


def test_unwritable_docs_dir_is_a_one_line_error_before_any_trial(tmp_path, monkeypatch):
  from experiments.tables import pages

  (tmp_path / "file").write_text("")
  docs, root = tmp_path / "file" / "papers", tmp_path / "runs"
  flags = {"table": "textbook_dates", "scale": "tiny", "root": str(root), "docs": str(docs)}
  with pytest.raises(ConfigError) as error:
    _main(monkeypatch, **flags)
  assert (
    str(error.value) == f"--docs={docs} cannot be created (Not a directory); pass a writable one."
  )
  assert not root.exists()  # no trial ran
  with pytest.raises(ConfigError, match=r"--docs=.* is --root: the page would replace its table"):
    pages.check_dir(str(tmp_path), str(tmp_path))
  table = TABLES.get("textbook_dates")
  invocation = pages.Invocation("cmd", 1.0, reproduce.local.Summary())
  with pytest.raises(ConfigError, match=r"^--docs=.*/file/papers: cannot write the page \("):
    pages.write(str(docs), table, "tiny", {}, str(tmp_path), "# t\n", invocation)


def test_a_recipe_table_is_its_table_trained_with_the_papers_optimizer_and_schedule():
  table, recipe = TABLES.get("luong2015_table4"), TABLES.get("luong2015_table4_recipe")
  assert recipe.rows == table.rows and recipe.claims == table.claims
  assert recipe.setup("paper") == table.setup("paper")  # the paper scale has it already
  added = {
    k: v
    for k, v in recipe.setup("tiny").overrides.items()
    if table.setup("tiny").overrides.get(k) != v
  }
  assert added == {
    "train.optimizer": "sgd",
    "train.learning_rate": 1.0,
    "train.warmup_steps": 0,
    "train.grad_clip": 5.0,
    "train.schedule": "halving",
    "train.decay_unit": "step",
    "train.decay_start": 533,  # 800 steps for 12 epochs: halved after "epoch 8"
    "train.decay_every": 67,
    "train.decay_factor": 0.5,
  }
  assert "SGD at rate 1" in recipe.setup("tiny").note
  adadelta = TABLES.get("bahdanau2015_table1_recipe").setup("tiny").overrides
  assert (adadelta["train.optimizer"], adadelta["train.learning_rate"]) == ("adadelta", 1.0)
