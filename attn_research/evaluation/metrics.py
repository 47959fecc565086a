"""Corpus metrics as scores of summed per-sentence sufficient statistics.

Every text metric is kept per sentence (n-gram matches for BLEU, character and word
n-grams for chrF, a 0/1 match for exact match; link counts for AER in `alignment`), and a
corpus score is a function of the column sums (`SCORES`). The same rows give the reported
number and every resampled test set of the paired bootstrap (`significance`).
"""

import functools
import math
import sys
from collections.abc import Callable, Sequence

import numpy as np
import sacrebleu
import sacremoses

# sacreBLEU on detokenised text (13a tokenisation, exponential smoothing): the comparable
# number today, reported with its signature.
_BLEU = sacrebleu.metrics.BLEU()
BLEU_SIGNATURE = str(_BLEU._SIGNATURE_TYPE({**vars(_BLEU), "num_refs": 1}))  # one reference each
# multi-bleu.perl's BLEU of Moses-tokenised text (`tokenizer.perl -a`, no escaping),
# unsmoothed: what the 2015 papers computed, labelled as such because it depends on the
# tokeniser.
TOKENIZED_BLEU = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none", force=True)
# Corpus chrF (Popović 2015) with sacreBLEU's defaults (character 6-grams, β = 2).
_CHRF = sacrebleu.metrics.CHRF()


def _sacrebleu_score(metric) -> Callable[[np.ndarray], float]:
  return lambda summed: float(metric._compute_score_from_stats(summed).score)


def _ratio(empty: str) -> Callable[[np.ndarray], float]:
  """summed[0] / summed[1]; `empty` is the error where the denominator is 0."""

  def score(summed: np.ndarray) -> float:
    if not summed[1]:
      raise ValueError(empty)
    return float(summed[0] / summed[1])

  return score


_LINKS_HIT = _ratio("AER of empty alignments.")  # (|A∩S| + |A∩P|) / (|A| + |S|)

# Every metric a run reports and ranks by, and whether higher is better.
HIGHER_IS_BETTER = {
  "bleu": True,
  "tokenized_bleu": True,
  "chrf": True,
  "exact_match": True,
  "ppl": False,
  "loss": False,
  "aer": False,
}

# Metric → the corpus score of its summed `[sentences, k]` statistics.
SCORES: dict[str, Callable[[np.ndarray], float]] = {
  "bleu": _sacrebleu_score(_BLEU),
  "tokenized_bleu": _sacrebleu_score(TOKENIZED_BLEU),
  "chrf": _sacrebleu_score(_CHRF),
  "exact_match": _ratio("exact_match of an empty split."),
  "aer": lambda summed: 1.0 - _LINKS_HIT(summed),
}


def _sacrebleu_statistics(metric, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
  return np.asarray(metric._extract_corpus_statistics(list(hyps), [list(refs)]), np.float64)


def sentence_statistics(
  hypotheses: Sequence[str], references: Sequence[str], lang: str = ""
) -> dict[str, np.ndarray]:
  """`[sentences, k]` statistics of every text metric of `SCORES` (`lang`: the target
  language, for `tokenized_bleu`'s Moses tokeniser)."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
  if not references:
    raise ValueError("No sentences to score: the split is empty.")
  return {
    "exact_match": np.asarray(
      [[h == r, 1] for h, r in zip(hypotheses, references, strict=True)], np.float64
    ),
    "bleu": _sacrebleu_statistics(_BLEU, hypotheses, references),
    "tokenized_bleu": _sacrebleu_statistics(
      TOKENIZED_BLEU, moses_tokenize(hypotheses, lang), moses_tokenize(references, lang)
    ),
    "chrf": _sacrebleu_statistics(_CHRF, hypotheses, references),
  }


def corpus_scores(statistics: dict[str, np.ndarray]) -> dict[str, float]:
  """Each metric's corpus score: `SCORES` of its statistics' column sums."""
  return {name: SCORES[name](rows.sum(0)) for name, rows in statistics.items()}


def perplexity(nll_sum: float, tokens: float) -> float:
  """exp(mean per-token negative log-likelihood), counting `</s>` as a token; `inf` past
  float range (a diverged model) and NaN for a NaN loss, never an exception."""
  mean = nll_sum / tokens
  return math.inf if mean > math.log(sys.float_info.max) else math.exp(mean)


def moses_tokenize(texts: Sequence[str], lang: str = "") -> list[str]:
  """`tokenizer.perl -a -no-escape` for `lang` (default English): `tokenized_bleu`'s input."""
  tokenizer = _moses(lang or "en")
  return [
    tokenizer.tokenize(t, escape=False, aggressive_dash_splits=True, return_str=True) for t in texts
  ]


@functools.cache
def _moses(lang: str) -> sacremoses.MosesTokenizer:
  return sacremoses.MosesTokenizer(lang=lang)


def bleu_by_length(
  bleu_statistics: np.ndarray, source_lengths: Sequence[int], width: int = 10
) -> list[dict[str, float | int]]:
  """sacreBLEU of the sentences in each source-length bin (Bahdanau et al. 2015, Fig. 2).

  Bins are `[1, width], [width + 1, 2 width], …` up to the longest source; empty bins are
  left out, and a bin's BLEU is a corpus BLEU over its sentences only.

  Args:
    bleu_statistics: `sentence_statistics(...)["bleu"]`, `[sentences, k]`.
    source_lengths: `[sentences]`.

  Returns:
    `{"min_length", "max_length", "num_examples", "bleu"}` per non-empty bin.
  """
  lengths = np.asarray(source_lengths)
  bins = np.maximum(lengths - 1, 0) // width
  rows = []
  for b in np.unique(bins):
    members = np.flatnonzero(bins == b)
    rows.append(
      {
        "min_length": int(b * width + 1),
        "max_length": int((b + 1) * width),
        "num_examples": len(members),
        "bleu": SCORES["bleu"](bleu_statistics[members].sum(0)),
      }
    )
  return rows
