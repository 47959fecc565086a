import base64

import pytest
import sacremoses
import sentencepiece

from attn_research.data.tokenizers import TOKENIZERS, SentencePiece, SentencePieceBPE
from attn_research.errors import ConfigError

# In-memory corpus in the languages the experiments translate; small enough to train in ms.
SENTENCES = {
  "en": ["Hello, world!", "I don't know what the e-mail said.", 'He said "yes" (twice).'],
  "de": ["Das Max-Planck-Institut ist schön, nicht wahr?", "Er sagte: „Guten Morgen!“"],
  "fr": ["Il a dit : « bonjour » !", "Je ne sais pas."],
  "vi": ["Tôi là sinh viên, và tôi yêu Hà Nội!", "Cảm ơn bạn rất nhiều."],
  "ko": ["안녕하세요, 세계! 저는 학생입니다.", "감사합니다."],
}
CORPUS = [s for sentences in SENTENCES.values() for s in sentences] * 5
ROUND_TRIPS = [(lang, s) for lang, sentences in SENTENCES.items() for s in sentences]


def test_levels_are_registered_in_order():
  assert TOKENIZERS.names() == ["char", "word", "moses", "spm", "spm_bpe"]


def test_char_keeps_every_character():
  char = TOKENIZERS.get("char")()
  assert char.split(" a b") == [" ", "a", " ", "b"]
  assert char.join(char.split("  Hà  Nội ")) == "  Hà  Nội "


def test_word_splits_on_whitespace_and_joins_with_one_space():
  word = TOKENIZERS.get("word")()
  assert word.split(" the  cat\tsat ") == ["the", "cat", "sat"]
  assert word.join(["the", "cat", "sat"]) == "the cat sat"


def test_moses_splits_and_glues_punctuation():
  moses = TOKENIZERS.get("moses")("en")
  assert moses.split("Hello, world!") == ["Hello", ",", "world", "!"]
  assert moses.join(["Hello", ",", "world", "!"]) == "Hello, world!"


def test_moses_english_contractions_as_sacremoses():
  moses = TOKENIZERS.get("moses")("en")
  assert moses.split("I don't.") == ["I", "don", "'t", "."]
  assert moses.split("I don't.") == sacremoses.MosesTokenizer("en").tokenize(
    "I don't.", escape=False
  )
  assert moses.join(["I", "don", "'t", "."]) == "I don't."


def test_moses_apostrophes_outside_english_do_not_round_trip():
  """The documented exception: other languages' rules split `'` off both sides."""
  moses = TOKENIZERS.get("moses")("de")
  assert moses.split("don't") == ["don", "'", "t"]
  assert moses.join(moses.split("don't")) == "don 't"


def test_moses_splits_hyphens_aggressively_and_glues_them_back():
  moses = TOKENIZERS.get("moses")("de")
  tokens = moses.split("Max-Planck-Institut")
  assert tokens == ["Max", "@-@", "Planck", "@-@", "Institut"]
  assert tokens == sacremoses.MosesTokenizer("de").tokenize(
    "Max-Planck-Institut", aggressive_dash_splits=True, escape=False
  )
  assert moses.join(tokens) == "Max-Planck-Institut"


def test_moses_does_not_escape_xml():
  moses = TOKENIZERS.get("moses")("en")
  assert moses.split("a & b < c") == ["a", "&", "b", "<", "c"]
  assert moses.join(["&amp;"]) == "&amp;"


def test_moses_without_a_language_is_english_and_unknown_codes_fall_back():
  text = "I don't know, Mr. Smith."
  english = TOKENIZERS.get("moses")("en").split(text)
  assert TOKENIZERS.get("moses")("").split(text) == english
  assert TOKENIZERS.get("moses")("xx").split(text) == sacremoses.MosesTokenizer("xx").tokenize(
    text, aggressive_dash_splits=True, escape=False
  )


@pytest.mark.parametrize(("lang", "text"), ROUND_TRIPS)
def test_moses_round_trips(lang, text):
  moses = TOKENIZERS.get("moses")(lang)
  assert moses.join(moses.split(text)) == text


def _spm(cls=SentencePiece, max_size=120, lang=""):
  tokenizer = cls(lang)
  pieces = tokenizer.train(CORPUS, max_size)
  return tokenizer, pieces


@pytest.mark.parametrize("cls", [SentencePiece, SentencePieceBPE])
@pytest.mark.parametrize(("lang", "text"), ROUND_TRIPS)
def test_spm_round_trips_and_joins_as_spm_decodes(cls, lang, text):
  tokenizer, _ = _spm(cls)
  pieces = tokenizer.split(text)
  assert tokenizer.join(pieces) == text
  reference = sentencepiece.SentencePieceProcessor(
    model_proto=base64.b64decode(tokenizer.state["model"])
  )
  assert tokenizer.join(pieces) == reference.decode_pieces(pieces)


def test_spm_reserves_the_vocabulary_specials_and_respects_the_size():
  _, pieces = _spm(max_size=100)
  assert pieces[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
  assert len(pieces) == 100
  assert len(set(pieces)) == len(pieces)


def test_spm_gets_fewer_pieces_when_the_corpus_has_fewer():
  _, pieces = _spm(max_size=100_000)
  assert len(set("".join(CORPUS))) < len(pieces) < 1000  # every character, a few more


def test_spm_is_deterministic():
  first, pieces = _spm()
  second, again = _spm()
  assert pieces == again
  assert first.state == second.state


def test_spm_unigram_and_bpe_differ():
  assert _spm(SentencePiece)[1] != _spm(SentencePieceBPE)[1]


def test_spm_restores_from_its_state():
  trained, _ = _spm()
  restored = SentencePiece()
  restored.restore(trained.state)
  assert restored.split(CORPUS[1]) == trained.split(CORPUS[1])


def test_spm_joins_pieces_outside_its_model():
  """What unk replacement copies from the source must still detokenise."""
  tokenizer, _ = _spm()
  assert tokenizer.join(["▁Das", "▁Zwiebelkuchen", "!"]) == "Das Zwiebelkuchen!"


def test_spm_too_small_a_vocabulary_names_the_config_key():
  with pytest.raises(ConfigError, match=r"dataset\.vocab_size=10 "):
    SentencePiece().train(CORPUS, 10)


def test_spm_without_text_is_refused():
  with pytest.raises(ConfigError, match="no training text"):
    SentencePiece().train([], 100)


def test_spm_needs_training_or_a_model():
  with pytest.raises(ValueError, match="Train or restore"):
    SentencePiece().split("a")
  with pytest.raises(ValueError, match="needs its model"):
    SentencePiece().restore({})


def test_fixed_tokenizers_learn_nothing():
  word = TOKENIZERS.get("word")()
  assert word.train(CORPUS, 10) is None
  assert word.state == {}
  with pytest.raises(ValueError, match="no state"):
    word.restore({"model": ""})
