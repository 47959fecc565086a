import os

import numpy as np
import pytest

from attn_research.errors import ConfigError
from attn_research.evaluation import leaderboard, metrics, significance
from tests.conftest import NAMES, TESTED_SENTENCES, VARIANTS

REFERENCES = [f"reference {i}" for i in range(TESTED_SENTENCES)]  # the tested sweep's


def _statistics(rows, references=REFERENCES):
  return significance.SentenceStatistics(significance.fingerprint(references), rows)


def test_collect_and_group_pool_seeds_into_variants(finished_sweep):
  collection = leaderboard.collect([str(finished_sweep)])
  assert len(collection.runs) == 7
  assert [os.path.basename(s.path) for s in collection.unfinished] == ["d_s0"]
  assert collection.unfinished[0].reason == "no result.json"
  assert [os.path.basename(s.path) for s in collection.failed] == ["e_s0"]
  assert [os.path.basename(s.path) for s in collection.diverged] == ["f_s0"]
  assert collection.diverged[0].reason.startswith("the training loss is nan at step 40")
  groups = leaderboard.group(collection.runs)
  assert {name: len(runs) for name, runs in groups.items()} == {
    NAMES["a"]: 3,
    NAMES["b"]: 3,
    NAMES["c"]: 1,
  }
  assert {os.path.basename(r.path)[0] for r in groups[NAMES["b"]]} == {"b"}


def test_single_variant_is_named_after_its_directory(finished_sweep):
  runs = leaderboard.collect([str(finished_sweep)]).runs
  assert list(leaderboard.group([r for r in runs if "/a_s" in r.path])) == ["sweep"]


def test_seeds_data_dirs_trackers_and_determinism_do_not_split_a_variant():
  def run(name, **config):
    return leaderboard.Run(name, {"config": {"model": {"attention": {"score": "dot"}}, **config}})

  runs = [
    run("a", seed=0),
    run("b", seed=1, dataset={"data_dir": "/elsewhere"}),
    run("c", tracking={"wandb": True, "mlflow": True}, train={"deterministic": True}),
    run("d", train={"learning_rate": 0.5}),
  ]
  groups = leaderboard.group(runs)
  assert {name: [r.path for r in members] for name, members in groups.items()} == {
    "train.learning_rate=—": ["a", "b", "c"],
    "train.learning_rate=0.5": ["d"],
  }


def test_mean_and_sample_std_match_numpy(finished_sweep):
  board = leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu")
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


def test_bleu_ranks_higher_first_and_ppl_lower_first(finished_sweep):
  collection = leaderboard.collect([str(finished_sweep)])
  by_bleu = leaderboard.rank(collection, "test.bleu")
  by_ppl = leaderboard.rank(collection, "test.ppl")
  assert [e.name for e in by_bleu.entries] == [NAMES["b"], NAMES["a"], NAMES["c"]]
  assert [e.name for e in by_ppl.entries] == [NAMES["c"], NAMES["b"], NAMES["a"]]
  assert [e.rank for e in by_ppl.entries] == [1, 2, 3]
  by_aer = leaderboard.rank(collection, "test.aer")  # variants without it come last
  assert by_aer.entries[0].name == NAMES["a"]


def test_unknown_metric_or_split_lists_the_available_ones(finished_sweep):
  collection = leaderboard.collect([str(finished_sweep)])
  for metric in ("test.blue", "train.bleu", "bleu", "test.num_examples"):
    with pytest.raises(ConfigError, match=r"test\.bleu, test\.chrf") as error:
      leaderboard.rank(collection, metric)
    assert "validation.ppl" in str(error.value) and "validation.aer" not in str(error.value)


def test_missing_directory_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match="not a directory"):
    leaderboard.collect([str(tmp_path / "nope")])


def _seeds(root, score: str) -> list[np.ndarray]:
  """The exact-match rows of each seed of `score`, read with NumPy alone."""
  paths = sorted(root.glob(f"{score}_s*/statistics.test.npz"))
  return [np.load(path)["exact_match"] for path in paths]


def test_variants_are_tested_against_the_baseline_with_seeds_pooled(tested_sweep):
  board = leaderboard.rank(
    leaderboard.collect([str(tested_sweep)]), "test.exact_match", baseline="general"
  )
  assert board.baseline == "model.attention.score=general" and not board.notes
  tested = {e.name.split("=")[1]: e for e in board.entries}
  assert [e.name.split("=")[1] for e in board.entries] == ["location", "general", "dot"]
  score = metrics.SCORES["exact_match"]
  for name, entry in tested.items():
    expected = significance.paired_bootstrap(
      _seeds(tested_sweep, "general"), _seeds(tested_sweep, name), score
    )
    assert entry.comparison == expected
    assert entry.comparison.score == pytest.approx(entry.metrics["exact_match"].mean)
  assert tested["location"].comparison.p_value < 0.01  # 0.71 vs 0.51 on 300 sentences
  assert tested["location"].comparison.difference == pytest.approx(0.2, abs=0.005)
  assert tested["dot"].comparison.p_value > 0.05  # 0.50 vs 0.51
  # By default the first row is the baseline; a unique part of a name selects one.
  collection = leaderboard.collect([str(tested_sweep)])
  assert leaderboard.rank(collection, "test.exact_match").baseline.endswith("location")
  assert leaderboard.rank(collection, "test.exact_match", "=dot").baseline.endswith("dot")


def test_a_baseline_that_names_no_single_variant_lists_them(tested_sweep):
  collection = leaderboard.collect([str(tested_sweep)])
  with pytest.raises(ConfigError, match=r"--baseline=luong names none .*score=general"):
    leaderboard.rank(collection, "test.exact_match", "luong")
  with pytest.raises(ConfigError, match=r"--baseline=model matches several"):
    leaderboard.rank(collection, "test.exact_match", "model")


def test_without_statistics_the_board_says_why_and_an_explicit_baseline_fails(
  finished_sweep, tested_sweep
):
  board = leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu")
  assert board.baseline == "" and all(e.comparison is None for e in board.entries)
  assert "statistics.test.npz is missing" in board.notes[0]
  assert "experiments.evaluate --workdir=" in board.notes[0]
  with pytest.raises(ConfigError, match="is missing"):
    leaderboard.rank(leaderboard.collect([str(finished_sweep)]), "test.bleu", "alignment=local_p")
  collection = leaderboard.collect([str(tested_sweep)])
  by_ppl = leaderboard.rank(collection, "test.ppl")  # no per-sentence statistics
  assert by_ppl.baseline == ""
  assert by_ppl.notes[0].startswith("No p-values: ppl has no per-sentence statistics; rank by")


def test_other_references_are_not_tested(tested_sweep):
  references = [f"other {i}" for i in range(300)]
  for path in tested_sweep.glob("dot_s*/statistics.test.npz"):
    saved = significance.load(str(path))
    significance.save(str(path), _statistics(saved.metrics, references))
  board = leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match")
  dot = next(e for e in board.entries if e.name.endswith("dot"))
  assert dot.comparison is None
  assert board.notes == [
    f"{dot.name}: not tested: its runs scored other test references than the baseline's"
  ]
  path = str(tested_sweep / "dot_s0" / "statistics.test.npz")  # now one seed of each
  significance.save(path, _statistics(significance.load(path).metrics))
  with pytest.raises(ConfigError, match="scored different test references"):
    leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match", "dot")


def test_statistics_that_do_not_score_the_result_are_refused_per_variant(tested_sweep):
  """A statistics file rewritten from another checkpoint, or missing, leaves that variant
  untested; the others are still tested."""
  path = tested_sweep / "dot_s1" / "statistics.test.npz"
  saved = significance.load(str(path))
  rows = saved.metrics["exact_match"].copy()
  rows[:, 0] = 1 - rows[:, 0]
  significance.save(str(path), _statistics({"exact_match": rows}))
  (tested_sweep / "general_s0" / "statistics.test.npz").unlink()
  board = leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match")
  tested = {e.name.split("=")[1]: e.comparison for e in board.entries}
  assert tested["location"] is not None and tested["dot"] is None and tested["general"] is None
  general, dot = board.notes  # in rank order
  assert "dot_s1/statistics.test.npz does not score the run's test.exact_match of 0.51" in dot
  assert f"--workdir={tested_sweep}/dot_s1 --split=test --checkpoint=latest" in dot
  assert "general_s0/statistics.test.npz is missing" in general
  with pytest.raises(ConfigError, match="does not score the run's"):
    leaderboard.rank(leaderboard.collect([str(tested_sweep)]), "test.exact_match", "dot")
