import numpy as np
import pytest

from attn_research.data.vocab import EOS_ID, UNK_ID, Vocabulary
from attn_research.decoding.unk_replace import load_dictionary, replace_unknowns
from attn_research.errors import ConfigError


def test_unknowns_become_the_most_attended_source_words(tmp_path):
  vocab = Vocabulary.build(["das ist gut"], "word")
  tokens = np.array([vocab.encode("das")[0], UNK_ID, UNK_ID, EOS_ID, UNK_ID])
  weights = np.zeros((5, 4))
  weights[1, 2] = 0.9  # step 1 looked at "Obama"
  weights[2, 3] = 0.8  # step 2 looked at "Merkel"
  source = ["der", "Präsident", "Obama", "Merkel"]
  assert replace_unknowns(tokens, weights, source, vocab) == "das Obama Merkel"

  path = tmp_path / "dict.tsv"
  path.write_text("Obama\tOBAMA\n")
  dictionary = load_dictionary(str(path))
  assert replace_unknowns(tokens, weights, source, vocab, dictionary) == "das OBAMA Merkel"


def test_bad_dictionaries_name_the_problem(tmp_path):
  with pytest.raises(ConfigError, match="does not exist"):
    load_dictionary(str(tmp_path / "missing.tsv"))
  bad = tmp_path / "bad.tsv"
  bad.write_text("a\tb\nno-tab-here\n")
  with pytest.raises(ConfigError, match="line 2"):
    load_dictionary(str(bad))
