import math

import numpy as np
import pytest
import sacrebleu

from attn_research.evaluation.metrics import (
  BLEU_SIGNATURE,
  SCORES,
  bleu_by_length,
  corpus_scores,
  perplexity,
  sentence_statistics,
)


def _scores(hyps, refs, lang=""):
  return corpus_scores(sentence_statistics(hyps, refs, lang))


def test_exact_match_and_perplexity():
  hyps, refs = ["2024-03-05", "1999-01-01"], ["2024-03-05", "1999-01-02"]
  np.testing.assert_array_equal(sentence_statistics(hyps, refs)["exact_match"], [[1, 1], [0, 1]])
  assert _scores(hyps, refs)["exact_match"] == 0.5
  assert perplexity(2.0 * math.log(3.0), 2.0) == pytest.approx(3.0)
  with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
    sentence_statistics(["a", "b"], ["a"])
  with pytest.raises(ValueError, match="the split is empty"):
    sentence_statistics([], [])
  with pytest.raises(ValueError, match="exact_match of an empty split"):
    SCORES["exact_match"](np.zeros(2))


def _bleu_by_hand(hyps, refs, max_n=4):
  """Papineni et al. 2002: clipped n-gram precisions, geometric mean, brevity penalty."""
  import collections

  matches, totals = [0] * max_n, [0] * max_n
  hyp_len = ref_len = 0
  for h, r in zip(hyps, refs, strict=True):
    h, r = h.split(), r.split()
    hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
    for n in range(1, max_n + 1):
      hc = collections.Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
      rc = collections.Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
      matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
      totals[n - 1] += max(len(h) - n + 1, 0)
  log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
  brevity = min(1.0, math.exp(1 - ref_len / hyp_len))
  return 100 * brevity * math.exp(log_precision)


def test_tokenized_bleu_matches_the_definition_and_sacrebleu_reports_its_signature():
  hyps = ["the cat sat on the mat today", "a dog ran in the big park"]
  refs = ["the cat sat on a mat today", "the dog ran in the big park"]
  scores = _scores(hyps, refs)
  assert scores["tokenized_bleu"] == pytest.approx(_bleu_by_hand(hyps, refs), rel=1e-9)
  assert BLEU_SIGNATURE.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
  assert _scores(refs, refs)["bleu"] == pytest.approx(100.0)
  assert _scores(refs, refs)["chrf"] == pytest.approx(100.0) and scores["chrf"] < 100.0


CASES = {  # hypotheses, references and their Moses tokens (`tokenizer.perl -a`)
  "en": (
    ["Hello, world! It's fine.", "The cat (black) sat."],
    ["Hello, world! It is fine.", "The cat (black) sat down."],
    ["Hello , world ! It 's fine .", "The cat ( black ) sat ."],
    ["Hello , world ! It is fine .", "The cat ( black ) sat down ."],
  ),
  "de": (
    ["Das ist kein Test.", "Hallo Welt!", "Ein kleiner Satz -- mit Zeichen.", "x"],
    ["Das ist ein Test.", "Hallo, Welt!", "Ein (kleiner) Satz -- mit Zeichen.", "x"],
    ["Das ist kein Test .", "Hallo Welt !", "Ein kleiner Satz -- mit Zeichen .", "x"],
    ["Das ist ein Test .", "Hallo , Welt !", "Ein ( kleiner ) Satz -- mit Zeichen .", "x"],
  ),
}


@pytest.mark.parametrize("lang", sorted(CASES))
def test_scores_of_summed_statistics_are_sacrebleus_and_tokenized_bleu_uses_moses_tokens(lang):
  hyps, refs, moses_hyps, moses_refs = CASES[lang]
  statistics = sentence_statistics(hyps, refs, lang)
  assert sorted(statistics) == ["bleu", "chrf", "exact_match", "tokenized_bleu"]
  assert {rows.shape[0] for rows in statistics.values()} == {len(refs)}
  scores = corpus_scores(statistics)
  assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
  assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-9)
  assert scores["exact_match"] == np.mean(np.asarray(hyps) == np.asarray(refs))
  assert scores["tokenized_bleu"] == pytest.approx(_bleu_by_hand(moses_hyps, moses_refs), rel=1e-9)
  assert SCORES["bleu"](statistics["bleu"][:2].sum(0)) == pytest.approx(
    sacrebleu.corpus_bleu(hyps[:2], [refs[:2]]).score, abs=1e-9
  )


def test_bleu_by_length_bins_by_source_length():
  hyps = ["a b c d", "a b x d", "e f g h i", "e f g h i"]
  refs = ["a b c d", "a b c d", "e f g h i", "e f g h j"]
  bleu = sentence_statistics(hyps, refs)["bleu"]
  rows = bleu_by_length(bleu, source_lengths=[3, 10, 11, 25], width=10)
  assert [(r["min_length"], r["max_length"], r["num_examples"]) for r in rows] == [
    (1, 10, 2),
    (11, 20, 1),
    (21, 30, 1),
  ]
  assert rows[0]["bleu"] == sacrebleu.corpus_bleu(hyps[:2], [refs[:2]]).score
  assert rows[1]["bleu"] == pytest.approx(100.0)
  assert rows[2]["bleu"] < 100.0
