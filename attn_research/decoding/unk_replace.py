"""Luong et al. 2015's "+unk replace": each generated `<unk>` becomes the source token
the decoder attended to most at that step, translated through a dictionary when one is
given (Jean et al. 2015; Luong et al. 2015 §4.1)."""

from collections.abc import Mapping, Sequence

import numpy as np

from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary
from attn_research.errors import ConfigError


def load_dictionary(path: str) -> dict[str, str]:
  """A tab-separated `source<TAB>target` file, one pair per line."""
  try:
    with open(path, encoding="utf-8") as f:
      pairs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
  except FileNotFoundError:
    raise ConfigError(f"decode.unk_dictionary={path!r} does not exist.") from None
  bad = [i + 1 for i, p in enumerate(pairs) if len(p) != 2]
  if bad:
    raise ConfigError(f"{path}: line {bad[0]} is not 'source<TAB>target'.")
  return dict(pairs)


def replace_unknowns(
  tokens: np.ndarray,
  weights: np.ndarray,
  source_tokens: Sequence[str],
  vocab: Vocabulary,
  dictionary: Mapping[str, str] | None = None,
) -> str:
  """Detokenised hypothesis with every `<unk>` replaced.

  Args:
    tokens: `[tgt_len]` decoded ids (stopping at `</s>`).
    weights: `[tgt_len, src_len]` the attention of the step that produced each token.
    source_tokens: the source sentence's tokens (what the attention indexes).
    vocab: target vocabulary.
    dictionary: optional source → target word map.
  """
  out = []
  for step, token in enumerate(tokens):
    token = int(token)
    if token == EOS_ID:
      break
    if token in (PAD_ID, BOS_ID):
      continue
    if token == UNK_ID and len(source_tokens):
      word = source_tokens[int(np.argmax(weights[step, : len(source_tokens)]))]
      out.append(dictionary.get(word, word) if dictionary else word)
    else:
      out.append(vocab.tokens[token])
  return vocab.join(out)
