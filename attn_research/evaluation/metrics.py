"""Sequence-level metrics computed from decoded text and teacher-forced sums."""

import math
from collections.abc import Sequence


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
