"""Vocabularies: token ↔ id maps, built from the training split and saved with a run."""

import collections
import json
from collections.abc import Iterable, Sequence

import numpy as np

from attn_research.errors import ConfigError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
LEVELS = ("char", "word")


class Vocabulary:
  """Ids 0–3 are `<pad> <s> </s> <unk>`; the rest follow by descending frequency.

  Attributes:
    level: "char" (every character is a token) or "word" (whitespace-separated).
    tokens: id → token.
  """

  def __init__(self, tokens: Sequence[str], level: str):
    if level not in LEVELS:
      raise ConfigError(f"Unknown vocabulary level {level!r}; valid levels: {', '.join(LEVELS)}.")
    if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
      raise ValueError(f"A vocabulary must start with {SPECIALS}.")
    self.level = level
    self.tokens = list(tokens)
    self._ids = {t: i for i, t in enumerate(self.tokens)}

  @classmethod
  def build(cls, texts: Iterable[str], level: str, max_size: int = 0) -> "Vocabulary":
    """Counts tokens in `texts`; keeps the `max_size` most frequent (0: all), ties by token."""
    counts = collections.Counter(tok for text in texts for tok in _split(text, level))
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    if max_size:
      ranked = ranked[: max_size - len(SPECIALS)]
    return cls([*SPECIALS, *ranked], level)

  def __len__(self) -> int:
    return len(self.tokens)

  def __eq__(self, other: object) -> bool:
    return isinstance(other, Vocabulary) and (self.level, self.tokens) == (
      other.level,
      other.tokens,
    )

  def encode(self, text: str) -> np.ndarray:
    """Token ids of `text`, without `<s>` or `</s>`; unknown tokens become `<unk>`."""
    return np.array([self._ids.get(t, UNK_ID) for t in self.split(text)], np.int32)

  def decode(self, ids: Iterable[int]) -> str:
    """Text of `ids` up to the first `</s>`, skipping `<pad>` and `<s>`."""
    out = []
    for i in ids:
      if i == EOS_ID:
        break
      if i not in (PAD_ID, BOS_ID):
        out.append(self.tokens[i])
    return self.join(out)

  def split(self, text: str) -> list[str]:
    """The tokens of `text` at this vocabulary's level (before any id lookup)."""
    return _split(text, self.level)

  def join(self, tokens: Iterable[str]) -> str:
    """Inverse of `split`."""
    return ("" if self.level == "char" else " ").join(tokens)

  def to_json(self) -> str:
    return json.dumps({"level": self.level, "tokens": self.tokens}, ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str) -> "Vocabulary":
    data = json.loads(text)
    return cls(data["tokens"], data["level"])


def _split(text: str, level: str) -> list[str]:
  return list(text) if level == "char" else text.split()
