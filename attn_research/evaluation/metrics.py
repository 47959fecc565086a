"""Sequence-level metrics computed from decoded text and teacher-forced sums."""

import math
from collections.abc import Sequence

import sacrebleu


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Fraction of hypotheses identical to their reference."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
  if not references:
    raise ValueError("exact_match of an empty split.")
  return sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)


def perplexity(nll_sum: float, tokens: float) -> float:
  """exp(mean per-token negative log-likelihood), counting `</s>` as a token."""
  return math.exp(nll_sum / tokens)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
  """Corpus BLEU two ways, as the papers and toolkits report it.

  * `bleu`: sacreBLEU on detokenised text (13a tokenisation, exponential smoothing) with
    its signature, the comparable number today;
  * `tokenized_bleu`: BLEU on whitespace tokens of the text as given, no smoothing — what
    `multi-bleu.perl` computed for the 2015 papers (Luong et al. report it on
    `tokenizer.perl` output), labelled as such.
  """
  metric = sacrebleu.metrics.BLEU()
  score = metric.corpus_score(list(hypotheses), [list(references)])
  tokenized = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none", force=True)
  return {
    "bleu": score.score,
    "bleu_signature": str(metric.get_signature()),
    "tokenized_bleu": tokenized.corpus_score(list(hypotheses), [list(references)]).score,
  }


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Corpus chrF (Popović 2015) with sacreBLEU's defaults (character 6-grams, β = 2)."""
  return sacrebleu.metrics.CHRF().corpus_score(list(hypotheses), [list(references)]).score
