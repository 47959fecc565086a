import numpy as np
import pytest

from attn_research.evaluation.alignment import aer_statistics, parse_pharaoh
from attn_research.evaluation.metrics import SCORES


def test_parse_pharaoh():
  assert parse_pharaoh("0-0 2-1  1?2") == {(0, 0), (2, 1), (1, 2)}
  assert parse_pharaoh("") == set()
  with pytest.raises(ValueError, match="source-target"):
    parse_pharaoh("0-0 3")


def _aer(predicted, sure, possible=None):
  possible = possible if possible is not None else [set() for _ in sure]
  return SCORES["aer"](aer_statistics(predicted, sure, possible).sum(0))


def test_aer_by_hand():
  # Sentence 1: A = {00, 11, 22}, S = {00, 11}, P = S ∪ {21}: |A∩S| = 2, |A∩P| = 2.
  # Sentence 2: A = {01, 10}, S = {00}, P = S ∪ {01}: |A∩S| = 0, |A∩P| = 1.
  predicted = [{(0, 0), (1, 1), (2, 2)}, {(0, 1), (1, 0)}]
  sure = [{(0, 0), (1, 1)}, {(0, 0)}]
  possible = [{(2, 1)}, {(0, 1)}]  # S is added to P
  np.testing.assert_array_equal(aer_statistics(predicted, sure, possible), [[4, 5], [1, 3]])
  assert _aer(predicted, sure, possible) == pytest.approx(1 - (2 + 2 + 0 + 1) / (3 + 2 + 2 + 1))
  assert _aer(sure, sure) == 0.0
  assert _aer([{(5, 0)}], [{(0, 0)}]) == 1.0
  assert aer_statistics([], [], []).shape == (0, 2)


def test_aer_rejects_mismatched_corpora_and_empty_alignments():
  with pytest.raises(ValueError, match="2 predicted, 1 sure"):
    aer_statistics([set(), set()], [{(0, 0)}], [set()])
  with pytest.raises(ValueError, match="AER of empty alignments"):
    _aer([set()], [set()])
