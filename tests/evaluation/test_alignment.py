import pytest

from attn_research.evaluation.alignment import aer, parse_pharaoh


def test_parse_pharaoh():
  assert parse_pharaoh("0-0 2-1  1?2") == {(0, 0), (2, 1), (1, 2)}
  assert parse_pharaoh("") == set()
  with pytest.raises(ValueError, match="source-target"):
    parse_pharaoh("0-0 3")


def test_aer_by_hand():
  # Sentence 1: A = {00, 11, 22}, S = {00, 11}, P = S ∪ {21}: |A∩S| = 2, |A∩P| = 2.
  # Sentence 2: A = {01, 10}, S = {00}, P = S ∪ {01}: |A∩S| = 0, |A∩P| = 1.
  predicted = [{(0, 0), (1, 1), (2, 2)}, {(0, 1), (1, 0)}]
  sure = [{(0, 0), (1, 1)}, {(0, 0)}]
  possible = [{(2, 1)}, {(0, 1)}]  # S is added to P
  assert aer(predicted, sure, possible) == pytest.approx(1 - (2 + 2 + 0 + 1) / (3 + 2 + 2 + 1))
  assert aer(sure, sure) == 0.0
  assert aer([{(5, 0)}], [{(0, 0)}]) == 1.0


def test_aer_rejects_mismatched_corpora():
  with pytest.raises(ValueError, match="2 predicted, 1 sure"):
    aer([set(), set()], [{(0, 0)}])
