"""Paired bootstrap resampling (Koehn 2004) of a system against a baseline, seeds pooled.

Every metric is a corpus score computed from per-sentence sufficient statistics (n-gram
matches for BLEU, character and word n-grams for chrF, a 0/1 match for exact match, link
counts for AER), so a resampled test set is scored by summing its sentences' rows. Each
of `samples` draws takes n sentence indices with replacement; the same draw scores the
baseline and the system, and every seed of each (a system's score on a draw is the mean
over its seeds' hypotheses, each resampled at those sentences). The p-value is that of
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
import sacrebleu
from sacrebleu.significance import estimate_ci

from attn_research import runs
from attn_research.errors import ConfigError
from attn_research.evaluation import metrics
from attn_research.evaluation.alignment import Links

SAMPLES = 1000
SEED = 12345  # sacreBLEU's default SACREBLEU_SEED
LEVEL = 0.05  # a difference is significant where p < LEVEL
_BLEU, _CHRF = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()  # as `metrics` reports them


def _sacrebleu_score(metric) -> Callable[[np.ndarray], float]:
  return lambda summed: metric._compute_score_from_stats(summed).score


def _aer(summed: np.ndarray) -> float:
  if not summed[1]:
    raise ValueError("AER of empty alignments.")
  return float(1.0 - summed[0] / summed[1])


# Metric → the corpus score of summed per-sentence statistics.
SCORES: dict[str, Callable[[np.ndarray], float]] = {
  "bleu": _sacrebleu_score(_BLEU),
  "tokenized_bleu": _sacrebleu_score(metrics.TOKENIZED_BLEU),
  "chrf": _sacrebleu_score(_CHRF),
  "exact_match": lambda summed: float(summed[0] / summed[1]),
  "aer": _aer,
}


def _sacrebleu_statistics(metric, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
  return np.asarray(metric._extract_corpus_statistics(list(hyps), [list(refs)]), np.float64)


def text_statistics(
  hypotheses: Sequence[str], references: Sequence[str], lang: str = ""
) -> dict[str, np.ndarray]:
  """`[sentences, k]` statistics of every text metric of `SCORES` (`lang`: the target
  language, for `tokenized_bleu`'s Moses tokeniser)."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
  return {
    "bleu": _sacrebleu_statistics(_BLEU, hypotheses, references),
    "tokenized_bleu": _sacrebleu_statistics(
      metrics.TOKENIZED_BLEU,
      metrics.moses_tokenize(hypotheses, lang),
      metrics.moses_tokenize(references, lang),
    ),
    "chrf": _sacrebleu_statistics(_CHRF, hypotheses, references),
    "exact_match": np.asarray(
      [[h == r, 1] for h, r in zip(hypotheses, references, strict=True)], np.float64
    ),
  }


def aer_statistics(
  predicted: Sequence[Links], sure: Sequence[Links], possible: Sequence[Links]
) -> np.ndarray:
  """`[sentences, 2]` rows (|A∩S| + |A∩P|, |A| + |S|) of `alignment.aer`; `SCORES["aer"]`
  scores their sum."""
  return np.asarray(
    [
      [len(a & s) + len(a & (p | s)), len(a) + len(s)]
      for a, s, p in zip(predicted, sure, possible, strict=True)
    ],
    np.float64,
  ).reshape(-1, 2)


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


def save(path: str, statistics: dict[str, np.ndarray], references: Sequence[str]) -> None:
  """Writes `statistics` and the references' fingerprint to `path` (.npz), atomically."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **statistics, **{_REFERENCES: np.asarray(fingerprint(references))})
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
