"""The paired bootstrap against sacreBLEU's, and on differences known to be real or null."""

import numpy as np
import pytest
import sacrebleu
from sacrebleu.significance import PairedTest

from attn_research.errors import ConfigError
from attn_research.evaluation import metrics, significance

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "rug", "red", "big"]


def _corpus(seed, n=200):
  rng = np.random.default_rng(seed)
  return [" ".join(rng.choice(WORDS, rng.integers(4, 12))) for _ in range(n)]


def _corrupt(refs, share, seed):
  """The references with `share` of the sentences (chosen at random) garbled."""
  rng = np.random.default_rng(seed)
  out = []
  for ref in refs:
    words = ref.split()
    if rng.random() < share:
      words = list(rng.permutation(words))[: max(1, len(words) - 2)]
    out.append(" ".join(words))
  return out


@pytest.mark.parametrize("name", ["bleu", "chrf"])
def test_one_seed_equals_sacrebleus_paired_bootstrap(name):
  refs = _corpus(0)
  baseline, system = _corrupt(refs, 0.5, 1), _corrupt(refs, 0.4, 2)
  ours = significance.paired_bootstrap(
    [metrics.sentence_statistics(baseline, refs)[name]],
    [metrics.sentence_statistics(system, refs)[name]],
    metrics.SCORES[name],
  )
  sacre = {"bleu": sacrebleu.metrics.BLEU(), "chrf": sacrebleu.metrics.CHRF()}[name]
  test = PairedTest([("baseline", baseline), ("system", system)], {name: sacre}, [refs], "bs", 1000)
  _, results = test()
  (scores,) = (value for key, value in results.items() if key != "System")
  base, theirs = scores
  assert ours.score == pytest.approx(theirs.score, abs=1e-9)
  assert ours.p_value == theirs.p_value
  assert ours.mean == pytest.approx(theirs.mean, abs=1e-6)
  assert ours.ci == pytest.approx(theirs.ci, abs=1e-6)
  assert ours.baseline == pytest.approx(base.score, abs=1e-9)


@pytest.mark.parametrize("name", ["bleu", "chrf", "exact_match"])
def test_a_real_difference_is_significant_and_a_null_one_is_not(name):
  refs = _corpus(3, 300)
  score = metrics.SCORES[name]

  def stats(share, seeds):
    return [metrics.sentence_statistics(_corrupt(refs, share, s), refs)[name] for s in seeds]

  real = significance.paired_bootstrap(stats(0.6, [10, 11]), stats(0.3, [12, 13]), score)
  assert real.p_value < 0.01 and real.difference > 0
  assert real.difference_interval[0] > 0  # the interval excludes 0
  null = significance.paired_bootstrap(stats(0.45, [20, 21]), stats(0.45, [22, 23]), score)
  assert null.p_value > 0.05
  assert null.difference_interval[0] < 0 < null.difference_interval[1]


def test_seeds_pool_by_their_mean_and_one_seed_repeated_is_one_seed():
  refs = _corpus(4)
  score = metrics.SCORES["exact_match"]
  a, b, c = (
    metrics.sentence_statistics(_corrupt(refs, share, 30), refs)["exact_match"]
    for share in (0.2, 0.5, 0.7)
  )
  once = significance.paired_bootstrap([a], [b], score)
  twice = significance.paired_bootstrap([a, a], [b, b], score)
  assert twice == once
  pooled = significance.paired_bootstrap([a], [b, c], score)
  assert pooled.score == pytest.approx((score(b.sum(0)) + score(c.sum(0))) / 2)
  with pytest.raises(ValueError, match="same sentences"):
    significance.paired_bootstrap([a], [b[:-1]], score)
  itself = significance.paired_bootstrap([a, b], [a, b], score)
  assert (itself.p_value, itself.difference, itself.difference_interval) == (1.0, 0.0, (0.0, 0.0))


def test_statistics_files_round_trip_and_a_corrupt_one_names_the_fix(tmp_path):
  refs = _corpus(5, 20)
  stats = metrics.sentence_statistics(_corrupt(refs, 0.5, 6), refs)
  path = str(tmp_path / "statistics.test.npz")
  significance.save(path, significance.SentenceStatistics(significance.fingerprint(refs), stats))
  loaded = significance.load(path)
  assert loaded.references == significance.fingerprint(refs) != significance.fingerprint(refs[1:])
  assert loaded.metrics.keys() == stats.keys()
  for name, rows in stats.items():
    np.testing.assert_array_equal(loaded.metrics[name], rows)
  with open(path, "r+b") as f:
    f.truncate(100)
  with pytest.raises(ConfigError, match="delete it and write it again"):
    significance.load(path)
