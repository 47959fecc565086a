import os

import numpy as np
import pytest

from attn_research.errors import ConfigError
from attn_research.evaluation import leaderboard
from tests.conftest import NAMES, VARIANTS


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
