"""Alignment error rate (Och & Ney 2003) of attention against gold word alignments.

Alignments are sets of (source position, target position) links, read and written in the
Pharaoh format (`"0-0 2-1"`, 0-based `source-target`). Gold data has sure links S and
possible links P ⊇ S (as RWTH's English–German data that Luong et al. score in Table 6);
a model's alignment A takes, for each target token under forced decoding of the
reference, the source position with the largest attention weight.
"""

from collections.abc import Sequence

import numpy as np

Links = set[tuple[int, int]]


def parse_pharaoh(text: str) -> Links:
  """`"0-0 2-1"` → {(0, 0), (2, 1)}; `"s?t"` (a possible link in some tools) counts too."""
  links = set()
  for pair in text.split():
    source, sep, target = pair.replace("?", "-").partition("-")
    if not sep:
      raise ValueError(f"Not a Pharaoh link: {pair!r} in {text!r}; expected 'source-target'.")
    links.add((int(source), int(target)))
  return links


def aer_statistics(
  predicted: Sequence[Links], sure: Sequence[Links], possible: Sequence[Links]
) -> np.ndarray:
  """`[sentences, 2]` rows (|A∩S| + |A∩P|, |A| + |S|), whose column sums give the corpus
  AER = 1 − (|A∩S| + |A∩P|) / (|A| + |S|) (`metrics.SCORES["aer"]`).

  Args:
    predicted: A per sentence.
    sure: S per sentence.
    possible: P per sentence; S is added to it (P ⊇ S by definition).
  """
  if not len(predicted) == len(sure) == len(possible):
    raise ValueError(f"{len(predicted)} predicted, {len(sure)} sure, {len(possible)} possible.")
  return np.asarray(
    [
      [len(a & s) + len(a & (p | s)), len(a) + len(s)]
      for a, s, p in zip(predicted, sure, possible, strict=True)
    ],
    np.float64,
  ).reshape(-1, 2)
