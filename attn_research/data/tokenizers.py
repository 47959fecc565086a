"""How a vocabulary cuts text into tokens (`dataset.vocab`), and how it glues them back.

`join` detokenises, so decoded hypotheses are plain text that sacreBLEU and chrF score
against the untouched references; `join(split(text)) == text` for ordinary text (see each
tokenizer for what it cannot give back).
"""

import abc
import base64
import io
from collections.abc import Iterable

import numpy as np
import sacremoses
import sentencepiece

from attn_research.errors import ConfigError
from attn_research.registry import Registry


class Tokenizer(abc.ABC):
  """Splits text into tokens and joins them back.

  Attributes:
    lang: ISO 639-1 code of the text ("" when unknown or not a language), for the
      tokenizers whose rules depend on it.
  """

  def __init__(self, lang: str = ""):
    self.lang = lang

  @abc.abstractmethod
  def split(self, text: str) -> list[str]:
    """The tokens of `text`."""

  @abc.abstractmethod
  def join(self, tokens: Iterable[str]) -> str:
    """Detokenised text of `tokens`: the inverse of `split`."""

  def train(self, texts: Iterable[str], max_size: int, sample: int = 0) -> list[str] | None:
    """Fits a learned tokenizer to `texts` (to a random `sample` of them when there are
    more, 0: all); returns all its tokens in id order (the vocabulary's specials first), or
    None.

    Fixed tokenizers learn nothing and return None: the vocabulary counts their tokens.
    """
    return None

  def piece_ids(self, texts: list[str]) -> list[list[int]] | None:
    """The ids of `texts`' tokens in the learned model's order (a learned vocabulary's ids),
    computed together; None for fixed tokenizers, whose ids the vocabulary assigns."""
    return None

  @property
  def state(self) -> dict[str, str]:
    """What a vocabulary's JSON must hold to rebuild this tokenizer with `restore`."""
    return {}

  def restore(self, state: dict[str, str]) -> None:
    """Takes back `state`; fixed tokenizers have none."""
    if state:
      raise ValueError(f"{type(self).__name__} has no state to restore, got {sorted(state)}.")


TOKENIZERS: Registry[type[Tokenizer]] = Registry("vocabulary level", "dataset.vocab")


@TOKENIZERS.register("char")
class Characters(Tokenizer):
  """Every character is a token (spaces included), so every text round-trips."""

  def split(self, text: str) -> list[str]:
    return list(text)

  def join(self, tokens: Iterable[str]) -> str:
    return "".join(tokens)


@TOKENIZERS.register("word")
class Words(Tokenizer):
  """Whitespace-separated tokens, for corpora that come tokenised (IWSLT'15, synthetic tasks).

  Runs of whitespace and leading/trailing whitespace come back as single spaces / nothing.
  """

  def split(self, text: str) -> list[str]:
    return text.split()

  def join(self, tokens: Iterable[str]) -> str:
    return " ".join(tokens)


@TOKENIZERS.register("moses")
class Moses(Tokenizer):
  """Moses `tokenizer.perl -a` and `detokenizer.perl` (sacremoses), as the 2015 papers' data.

  Hyphens between letters or digits split as `@-@` (`-a`), as in the WMT'14 data of Luong
  et al. 2015 and tensorflow/nmt's WMT'16 scripts: German compounds then share pieces, and
  the detokeniser glues them back. No XML escaping (`&amp;` …), so tokens are the text's own
  characters. An empty `lang` means English, `tokenizer.perl`'s default; codes sacremoses
  lacks get English non-breaking prefixes and language-neutral rules.

  Not given back by `join`: spacing Moses cannot know (`AT&T` → `AT & T`, `< b >`), runs of
  whitespace, apostrophes outside en/fr/it (`don't` → `don 't`), and French typographic spaces
  that `lang="fr"` adds before `! ? : ;`.
  """

  def __init__(self, lang: str = ""):
    super().__init__(lang)
    self._tokenizer = sacremoses.MosesTokenizer(lang or "en")
    self._detokenizer = sacremoses.MosesDetokenizer(lang or "en")

  def split(self, text: str) -> list[str]:
    return self._tokenizer.tokenize(text, aggressive_dash_splits=True, escape=False)

  def join(self, tokens: Iterable[str]) -> str:
    return self._detokenizer.detokenize(list(tokens), unescape=False)


_SPM_OPTIONS = {
  # spm's default pieces for these ids are the vocabulary's specials, `<pad> <s> </s> <unk>`.
  "pad_id": 0,
  "bos_id": 1,
  "eos_id": 2,
  "unk_id": 3,
  "normalization_rule_name": "identity",  # references are scored as they are, un-normalised
  "hard_vocab_limit": False,  # a small corpus gets fewer pieces, as the counted levels do
  "num_threads": 16,  # unigram EM sums per thread, so the model depends on the count
  "minloglevel": 2,
}


_SAMPLE_SEED = 20180806  # of the sample of large corpora that spm learns from


def reservoir_sample(texts: Iterable[str], size: int, seed: int) -> list[str]:
  """A uniform random sample of `size` of `texts` (all of them when there are fewer), in
  their order, reading them once with `size` in memory (reservoir sampling, Algorithm R)."""
  rng = np.random.default_rng(seed)
  kept: list[tuple[int, str]] = []
  draws = np.zeros(0)
  for i, text in enumerate(texts):
    if i < size:
      kept.append((i, text))
      continue
    if not len(draws):
      draws = rng.random(65_536)
    slot = int(draws[-1] * (i + 1))
    draws = draws[:-1]
    if slot < size:
      kept[slot] = (i, text)
  return [text for _, text in sorted(kept)]


@TOKENIZERS.register("spm")
class SentencePiece(Tokenizer):
  """SentencePiece (Kudo & Richardson 2018) unigram pieces learned from the training texts.

  The model is trained in memory, deterministically, and travels base64-encoded in the
  vocabulary's JSON. Its ids are the vocabulary's: spm reserves `<pad> <s> </s> <unk>` (its
  default pieces) as 0–3, so `max_size` counts them. Every character of the training texts
  is a piece, except the rarest 0.05% for `lang` "ja" and "zh". Text is not normalised (no
  NFKC), so `join` gives back the text itself except for runs of whitespace, which become
  one space, and a literal `▁` (U+2581, spm's space), which becomes a space.
  """

  MODEL_TYPE = "unigram"
  DEFAULT_SIZE = 8000  # for `dataset.vocab_size` 0; a common size for small translation corpora

  def __init__(self, lang: str = ""):
    super().__init__(lang)
    self._model = b""
    self._processor: sentencepiece.SentencePieceProcessor | None = None

  def split(self, text: str) -> list[str]:
    if self._processor is None:
      raise ValueError("Train or restore a SentencePiece tokenizer before using it.")
    return self._processor.encode(text, out_type=str)

  def piece_ids(self, texts: list[str]) -> list[list[int]]:
    if self._processor is None:
      raise ValueError("Train or restore a SentencePiece tokenizer before using it.")
    return self._processor.encode(texts, out_type=int)

  def join(self, tokens: Iterable[str]) -> str:
    # spm's own `decode_pieces` leaves pieces outside its model (the source words that
    # unk replacement copies) with their `▁`, and turns `<unk>` into ` ⁇ `; this gives
    # the same text for the model's pieces.
    return "".join(tokens).replace("▁", " ").removeprefix(" ")

  def train(self, texts: Iterable[str], max_size: int, sample: int = 0) -> list[str]:
    size = max_size or self.DEFAULT_SIZE
    model = io.BytesIO()
    if sample:
      texts = reservoir_sample(texts, sample, _SAMPLE_SEED)
    try:
      sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=size,
        model_type=self.MODEL_TYPE,
        # spm's advice: keep every character unless the script has thousands (Han, kana);
        # a character left out is `<unk>` in every hypothesis that needs it.
        character_coverage=0.9995 if self.lang in ("ja", "zh") else 1.0,
        **_SPM_OPTIONS,
      )
    except RuntimeError as e:  # spm's message: "INTERNAL: file(line) [check] reason"
      reason = str(e).partition("] ")[2].strip() or "no training text."
      raise ConfigError(
        f"SentencePiece cannot learn dataset.vocab_size={size} pieces from the training "
        f"texts: {reason} Raise dataset.vocab_size, or check the data."
      ) from None
    self._load(model.getvalue())
    return [self._processor.id_to_piece(i) for i in range(self._processor.get_piece_size())]

  @property
  def state(self) -> dict[str, str]:
    return {"model": base64.b64encode(self._model).decode("ascii")}

  def restore(self, state: dict[str, str]) -> None:
    if "model" not in state:
      raise ValueError("A SentencePiece vocabulary needs its model; rebuild the vocabulary.")
    self._load(base64.b64decode(state["model"]))

  def _load(self, model: bytes) -> None:
    self._model = model
    self._processor = sentencepiece.SentencePieceProcessor(model_proto=model)


@TOKENIZERS.register("spm_bpe")
class SentencePieceBPE(SentencePiece):
  """SentencePiece's byte-pair encoding (Sennrich et al. 2016) instead of unigram."""

  MODEL_TYPE = "bpe"
