"""Paired bootstrap resampling (Koehn 2004) of a system against a baseline, seeds pooled.

Every metric is a corpus score of summed per-sentence sufficient statistics (`metrics`),
so a resampled test set is scored by summing its sentences' rows. Each of `samples` draws
takes n sentence indices with replacement; the same draw scores the baseline and the
system, and every seed of each (a system's score on a draw is the mean over its seeds'
hypotheses, each resampled at those sentences). The p-value is that of
Moses' `bootstrap-hypothesis-difference-significance.pl` as sacreBLEU computes it: the
share of draws whose |difference|, centred on its bootstrap mean, exceeds the observed
|difference|, (c + 1) / (samples + 1); 1 for identical systems.

BLEU and chrF statistics and scores are sacreBLEU's own (its metrics' sufficient
statistics), and with one seed per system the test is sacreBLEU's `paired_bs` exactly:
the same indices from a generator seeded 12345 (sacreBLEU's default `SACREBLEU_SEED`),
observed scores from the exact statistics and resampled ones from float32 sums, the same
p-value and 95% interval (but for identical systems: p = 1 here, 1 / (samples + 1) there).

A run's final evaluation leaves each split's statistics beside its hypotheses
(`runs.STATISTICS`, written by `save`), so that leaderboards and paper tables test runs
without decoding again. Perplexity and loss have no per-sentence statistics there.
"""

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Callable, Sequence

import numpy as np
from sacrebleu.significance import estimate_ci

from attn_research import runs
from attn_research.errors import ConfigError

SAMPLES = 1000
SEED = 12345  # sacreBLEU's default SACREBLEU_SEED
LEVEL = 0.05  # a difference is significant where p < LEVEL


# ----------------------------------------------------------------------------------------
# The statistics file of an evaluated split (`runs.STATISTICS`).

_REFERENCES = "references_sha256"


@dataclasses.dataclass(frozen=True)
class SentenceStatistics:
  """A split's per-sentence statistics, metric → `[sentences, k]`, and a fingerprint of
  its references (runs can be compared only on the same sentences in the same order)."""

  references: str
  metrics: dict[str, np.ndarray]


def fingerprint(references: Sequence[str]) -> str:
  return hashlib.sha256("".join(r + "\n" for r in references).encode("utf-8")).hexdigest()


def save(path: str, statistics: SentenceStatistics) -> None:
  """Writes `statistics` to `path` (.npz), atomically."""
  buffer = io.BytesIO()
  np.savez_compressed(
    buffer, **statistics.metrics, **{_REFERENCES: np.asarray(statistics.references)}
  )
  runs.atomic_write(path, buffer.getvalue())


def load(path: str, fix: str = "") -> SentenceStatistics:
  """What `save` wrote; an unreadable file is a `ConfigError` naming it and `fix` (the
  command that writes it again)."""
  try:
    with np.load(path) as data:
      arrays = {name: data[name] for name in data.files}
    references = str(arrays.pop(_REFERENCES))
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise ConfigError(
      f"Cannot read {path} ({e}); delete it and write it again"
      + (f" with {fix}" if fix else " (experiments.evaluate --reports_dir=<the run>)")
      + "."
    ) from e
  return SentenceStatistics(references, arrays)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """A system against the baseline.

  Attributes:
    score, baseline: their corpus scores (means over seeds).
    p_value: of the difference under the paired bootstrap.
    mean, ci: the system's bootstrap mean and the half-width of its 95% interval
      (sacreBLEU's `μ ± CI`).
    difference: the observed system − baseline.
    difference_interval: the 2.5th and 97.5th percentiles of the resampled differences.
  """

  score: float
  baseline: float
  p_value: float
  mean: float
  ci: float
  difference: float
  difference_interval: tuple[float, float]


def paired_bootstrap(
  baseline: Sequence[np.ndarray],
  system: Sequence[np.ndarray],
  score: Callable[[np.ndarray], float],
  samples: int = SAMPLES,
  seed: int = SEED,
) -> Comparison:
  """Compares per-seed sentence statistics (`[sentences, k]` each, the same sentences in
  the same order for every seed of both systems) under `score`."""
  n = baseline[0].shape[0]
  if any(s.shape[0] != n for s in (*baseline, *system)):
    raise ValueError("Every seed of both systems must score the same sentences.")
  index = np.random.default_rng(seed).choice(n, size=(samples, n), replace=True)

  def observed(seeds):
    return float(np.mean([score(s.sum(0)) for s in seeds]))

  def resampled(seeds):  # float32 sums, as sacreBLEU resamples
    single = [s.astype(np.float32) for s in seeds]
    return np.mean([[score(s[i].sum(0)) for i in index] for s in single], axis=0)

  base, ours = resampled(baseline), resampled(system)
  difference = observed(system) - observed(baseline)
  spread = np.abs(ours - base)
  p_value = (np.sum(spread - spread.mean() > abs(difference)).item() + 1) / (samples + 1)
  if not spread.any():  # identical hypotheses (sacreBLEU would say 1 / (samples + 1))
    p_value = 1.0
  mean, ci = estimate_ci(ours)
  low, high = np.percentile(ours - base, [2.5, 97.5])
  return Comparison(
    score=observed(system),
    baseline=observed(baseline),
    p_value=p_value,
    mean=float(mean),
    ci=float(ci),
    difference=difference,
    difference_interval=(float(low), float(high)),
  )
