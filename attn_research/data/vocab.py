"""Vocabularies: token ↔ id maps, built from the training split and saved with a run."""

import collections
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from attn_research.data.tokenizers import TOKENIZERS
from attn_research.errors import ConfigError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


class Vocabulary:
  """Ids 0–3 are `<pad> <s> </s> <unk>`; the rest follow by descending frequency, or in the
  learned model's order for `spm` levels.

  Attributes:
    level: the tokenizer (`tokenizers.TOKENIZERS`): "char", "word", "moses", "spm", ….
    lang: language code of the text ("" when unknown), for `moses` rules and `spm`'s
      character coverage.
    tokens: id → token.
    tokenizer: splits text into `tokens` and joins them back (detokenises).
  """

  def __init__(
    self,
    tokens: Sequence[str],
    level: str,
    lang: str = "",
    state: dict[str, str] | None = None,
  ):
    self.tokenizer = TOKENIZERS.get(level)(lang)
    self.tokenizer.restore(state or {})
    if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
      raise ValueError(f"A vocabulary must start with {SPECIALS}.")
    self.level = level
    self.lang = lang
    self.tokens = list(tokens)
    self._ids = {t: i for i, t in enumerate(self.tokens)}

  @classmethod
  def build(
    cls, texts: Iterable[str], level: str, max_size: int = 0, lang: str = "", sample: int = 0
  ) -> "Vocabulary":
    """The vocabulary of `texts` (read once, as they stream), at most `max_size` ids
    including the 4 specials.

    Fixed levels count tokens and keep the most frequent (`max_size` 0: all), ties by token,
    the rest becoming `<unk>` as in the papers. Learned levels (`spm`) train on `texts`, or
    on a seeded random `sample` of them when there are more (0: all); `max_size` 0 means
    `SentencePiece.DEFAULT_SIZE`.
    """
    if max_size < 0 or 0 < max_size <= len(SPECIALS):
      raise ConfigError(
        f"dataset.vocab_size={max_size}: use 0 (all tokens) or more than {len(SPECIALS)}."
      )
    tokenizer = TOKENIZERS.get(level)(lang)
    tokens = tokenizer.train(texts, max_size, sample)
    if tokens is None:
      counts = collections.Counter(
        tok for text in texts for tok in tokenizer.split(text) if tok not in SPECIALS
      )
      ranked = sorted(counts, key=lambda t: (-counts[t], t))
      if max_size:
        ranked = ranked[: max_size - len(SPECIALS)]
      tokens = [*SPECIALS, *ranked]
    return cls(tokens, level, lang, tokenizer.state)

  def __len__(self) -> int:
    return len(self.tokens)

  def __eq__(self, other: object) -> bool:
    return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

  def encode(self, text: str) -> np.ndarray:
    """Token ids of `text`, without `<s>` or `</s>`; unknown tokens become `<unk>`."""
    return np.array([self._ids.get(t, UNK_ID) for t in self.split(text)], np.int32)

  def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
    """`encode` of each text; a learned tokenizer encodes them together, in its own code."""
    ids = self.tokenizer.piece_ids(texts)
    if ids is None:
      return [self.encode(t) for t in texts]
    return [np.array(i, np.int32) for i in ids]

  def decode(self, ids: Iterable[int]) -> str:
    """Detokenised text of `ids` up to the first `</s>`, skipping `<pad>` and `<s>`."""
    out = []
    for i in ids:
      if i == EOS_ID:
        break
      if i not in (PAD_ID, BOS_ID):
        out.append(self.tokens[i])
    return self.join(out)

  def split(self, text: str) -> list[str]:
    """The tokens of `text` at this vocabulary's level (before any id lookup)."""
    return self.tokenizer.split(text)

  def join(self, tokens: Iterable[str]) -> str:
    """Detokenised text of `tokens`: the inverse of `split` (see the level's tokenizer)."""
    return self.tokenizer.join(tokens)

  def to_dict(self) -> dict[str, Any]:
    return {
      "level": self.level,
      "lang": self.lang,
      "tokens": self.tokens,
      "tokenizer": self.tokenizer.state,
    }

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str) -> "Vocabulary":
    """Also reads vocabularies saved before `lang` and `tokenizer` existed."""
    data = json.loads(text)
    return cls(data["tokens"], data["level"], data.get("lang", ""), data.get("tokenizer"))
