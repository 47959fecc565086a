"""Sequence-level metrics computed from decoded text and teacher-forced sums."""

import functools
import math
import sys
from collections.abc import Sequence

import numpy as np
import sacrebleu
import sacremoses


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Fraction of hypotheses identical to their reference."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
  if not references:
    raise ValueError("exact_match of an empty split.")
  return sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)


def perplexity(nll_sum: float, tokens: float) -> float:
  """exp(mean per-token negative log-likelihood), counting `</s>` as a token; `inf` past
  float range (a diverged model) and NaN for a NaN loss, never an exception."""
  mean = nll_sum / tokens
  return math.inf if mean > math.log(sys.float_info.max) else math.exp(mean)


def bleu(
  hypotheses: Sequence[str], references: Sequence[str], lang: str = ""
) -> dict[str, float | str]:
  """Corpus BLEU two ways, as the papers and toolkits report it.

  * `bleu`: sacreBLEU on detokenised text (13a tokenisation, exponential smoothing) with
    its signature, the comparable number today;
  * `tokenized_bleu`: BLEU of Moses-tokenised text (`tokenizer.perl -a` for `lang`, no
    escaping; the `moses` vocabulary level's tokens) without smoothing: what `multi-bleu.perl` computed for the 2015 papers,
    labelled as such because it depends on the tokeniser.
  """
  metric = sacrebleu.metrics.BLEU()
  score = metric.corpus_score(list(hypotheses), [list(references)])
  return {
    "bleu": score.score,
    "bleu_signature": str(metric.get_signature()),
    "tokenized_bleu": TOKENIZED_BLEU.corpus_score(
      moses_tokenize(hypotheses, lang), [moses_tokenize(references, lang)]
    ).score,
  }


# multi-bleu.perl's BLEU: of already tokenised text, unsmoothed.
TOKENIZED_BLEU = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none", force=True)


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
  hypotheses: Sequence[str],
  references: Sequence[str],
  source_lengths: Sequence[int],
  width: int = 10,
) -> list[dict[str, float | int]]:
  """sacreBLEU of the sentences in each source-length bin (Bahdanau et al. 2015, Fig. 2).

  Bins are `[1, width], [width + 1, 2 width], …` up to the longest source; empty bins are
  left out, and a bin's BLEU is a corpus BLEU over its sentences only.

  Returns:
    `{"min_length", "max_length", "num_examples", "bleu"}` per non-empty bin.
  """
  lengths = np.asarray(source_lengths)
  bins = np.maximum(lengths - 1, 0) // width
  rows = []
  for b in np.unique(bins):
    members = np.flatnonzero(bins == b)
    score = sacrebleu.metrics.BLEU().corpus_score(
      [hypotheses[i] for i in members], [[references[i] for i in members]]
    )
    rows.append(
      {
        "min_length": int(b * width + 1),
        "max_length": int((b + 1) * width),
        "num_examples": len(members),
        "bleu": score.score,
      }
    )
  return rows


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Corpus chrF (Popović 2015) with sacreBLEU's defaults (character 6-grams, β = 2)."""
  return sacrebleu.metrics.CHRF().corpus_score(list(hypotheses), [list(references)]).score
