import numpy as np
import pytest

from attn_research.data.vocab import EOS_ID, PAD_ID, UNK_ID, Vocabulary
from attn_research.errors import ConfigError


def test_char_vocabulary_orders_by_frequency_and_round_trips():
  vocab = Vocabulary.build(["abca", "ab"], "char")
  assert vocab.tokens[4:] == ["a", "b", "c"]  # a ×3, b ×2, c ×1
  ids = vocab.encode("cab")
  np.testing.assert_array_equal(ids, [6, 4, 5])
  assert vocab.decode([*ids, EOS_ID, 4, 4]) == "cab"  # stops at </s>
  assert vocab.decode([PAD_ID, *ids]) == "cab"
  assert vocab.encode("z")[0] == UNK_ID
  assert Vocabulary.from_json(vocab.to_json()) == vocab


def test_word_vocabulary_keeps_the_most_frequent():
  vocab = Vocabulary.build(["the cat", "the dog", "the cat"], "word", max_size=6)
  assert vocab.tokens[4:] == ["the", "cat"]
  assert vocab.decode(vocab.encode("the cat sat")) == "the cat <unk>"


def test_unknown_level_is_refused():
  with pytest.raises(ConfigError, match="char, word"):
    Vocabulary.build(["a"], "byte")
