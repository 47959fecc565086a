import json

import numpy as np
import pytest
import sacremoses

from attn_research.data.vocab import EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary
from attn_research.errors import ConfigError

SENTENCES = {
  "en": ["Hello, world!", "I don't know what the e-mail said."],
  "de": ["Das Max-Planck-Institut ist schön, nicht wahr?", "Er sagte: „Guten Morgen!“"],
  "vi": ["Tôi là sinh viên, và tôi yêu Hà Nội!", "Cảm ơn bạn rất nhiều."],
  "ko": ["안녕하세요, 세계! 저는 학생입니다.", "감사합니다."],
}
ROUND_TRIPS = [(lang, s) for lang, sentences in SENTENCES.items() for s in sentences]


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


def test_ties_are_broken_by_token():
  vocab = Vocabulary.build(["b a c", "a b"], "word")
  assert vocab.tokens[4:] == ["a", "b", "c"]
  assert len(Vocabulary.build(["b a c", "a b"], "word", max_size=5)) == 5
  assert Vocabulary.build(["b a c", "a b"], "word", max_size=5).tokens[4:] == ["a"]


def test_literal_specials_in_text_are_the_specials():
  """Some corpora (e.g. Stanford's WMT'14 files) write `<unk>` into the text itself."""
  vocab = Vocabulary.build(["a <unk> b", "<unk>"], "word")
  assert vocab.tokens == [*SPECIALS, "a", "b"]
  assert vocab.encode("<unk> a")[0] == UNK_ID


@pytest.mark.parametrize("size", [-1, 1, 4])
def test_sizes_without_room_for_a_token_are_refused(size):
  with pytest.raises(ConfigError, match=rf"dataset\.vocab_size={size}"):
    Vocabulary.build(["a"], "word", max_size=size)


def test_unknown_level_is_refused():
  with pytest.raises(
    ConfigError, match=r"dataset\.vocab\. Valid names: char, word, moses, spm, spm_bpe"
  ):
    Vocabulary.build(["a"], "byte")


def test_moses_vocabulary_counts_sacremoses_tokens_and_detokenises():
  texts = ["Hello, world!", "I don't know, world."]
  vocab = Vocabulary.build(texts, "moses", lang="en")
  tokenizer = sacremoses.MosesTokenizer("en")
  counted = {t for text in texts for t in tokenizer.tokenize(text, escape=False)}
  assert set(vocab.tokens[4:]) == counted
  assert vocab.tokens[4:6] == [",", "world"]  # ×2 each, then ×1 in token order
  assert vocab.split("don't") == ["don", "'t"]
  assert vocab.decode(vocab.encode("Hello, world!")) == "Hello, world!"
  assert vocab.decode(vocab.encode("Hello, moon!")) == "Hello, <unk>!"


@pytest.mark.parametrize("level", ["moses", "spm", "spm_bpe"])
@pytest.mark.parametrize(("lang", "text"), ROUND_TRIPS)
def test_in_vocabulary_text_round_trips(level, lang, text):
  vocab = Vocabulary.build(SENTENCES[lang] * 3, level, 60 if level != "moses" else 0, lang)
  ids = vocab.encode(text)
  assert UNK_ID not in ids
  assert vocab.decode([*ids, EOS_ID]) == text


def test_spm_vocabulary_is_the_model_and_round_trips_through_json():
  texts = [s for sentences in SENTENCES.values() for s in sentences]
  vocab = Vocabulary.build(texts, "spm", max_size=100)
  assert len(vocab) <= 100
  assert vocab.tokens[:4] == list(SPECIALS)
  np.testing.assert_array_equal(
    vocab.encode(texts[0]), [vocab.tokens.index(p) for p in vocab.split(texts[0])]
  )
  assert vocab.split("ß") == ["▁", "ß"]  # a character the corpus lacks
  np.testing.assert_array_equal(vocab.encode("ß"), [vocab.tokens.index("▁"), UNK_ID])
  restored = Vocabulary.from_json(vocab.to_json())
  assert restored == vocab
  assert restored.split(texts[3]) == vocab.split(texts[3])
  assert Vocabulary.build(texts, "spm", max_size=100) == vocab  # deterministic


def test_spm_size_zero_means_the_default():
  texts = ["the cat sat on the mat"] * 3
  assert Vocabulary.build(texts, "spm") == Vocabulary.build(texts, "spm", max_size=8000)


def test_json_holds_level_lang_tokens_and_tokenizer_state():
  vocab = Vocabulary.build(["Guten Tag!"], "moses", lang="de")
  data = json.loads(vocab.to_json())
  assert data == {
    "level": "moses",
    "lang": "de",
    "tokens": [*SPECIALS, "!", "Guten", "Tag"],
    "tokenizer": {},
  }
  assert Vocabulary.from_json(vocab.to_json()) == vocab
  assert Vocabulary.from_json(vocab.to_json()) != Vocabulary.build(["Guten Tag!"], "moses")


def test_json_saved_before_lang_still_loads():
  old = json.dumps({"level": "word", "tokens": [*SPECIALS, "the"]})
  vocab = Vocabulary.from_json(old)
  assert (vocab.level, vocab.lang, vocab.tokens) == ("word", "", [*SPECIALS, "the"])


def test_spm_json_without_its_model_is_refused():
  broken = json.dumps({"level": "spm", "tokens": list(SPECIALS)})
  with pytest.raises(ValueError, match="needs its model"):
    Vocabulary.from_json(broken)


@pytest.mark.parametrize("level", ["char", "word", "moses", "spm", "spm_bpe"])
def test_encode_batch_equals_encode(level):
  texts = ["The cat sat on the mat.", "", "A dog's toy — unseen wörds!", "the the the"] * 20
  vocab = Vocabulary.build(texts, level, 40 if level.startswith("spm") else 12)
  batch = vocab.encode_batch(["zebra crossing", *texts])
  for ids, text in zip(batch, ["zebra crossing", *texts], strict=True):
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, vocab.encode(text))
  assert UNK_ID in batch[0]
