import math

import pytest

from attn_research.evaluation.metrics import exact_match, perplexity


def test_exact_match_and_perplexity():
  assert exact_match(["2024-03-05", "1999-01-01"], ["2024-03-05", "1999-01-02"]) == 0.5
  assert perplexity(2.0 * math.log(3.0), 2.0) == pytest.approx(3.0)
  with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
    exact_match(["a", "b"], ["a"])
