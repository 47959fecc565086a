"""Synthetic sequence tasks with gold alignments: copy, reverse, sort, swap.

Sources are space-separated letters `a`–`z` (read them at the `word` vocabulary level).
Every example stores the alignment the task defines, as Pharaoh `s-t` pairs (source
position − target position, 0-based):

  * `alignment`: the sure links, one per target token;
  * `possible_alignment`: the sure links plus every other source position holding the
    same letter where the task cannot tell them apart (`sort` of repeated letters).

So attention's AER against these is exact. The `test_long` split holds longer sources
than training ever sees (length extrapolation); `train`, `validation` and `test` share
one length range. No source string is in two splits.
"""

import dataclasses
import zlib
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

ALPHABET = tuple("abcdefghijklmnopqrstuvwxyz")
SEED = 20150901
TRAIN_LENGTHS = (3, 30)  # inclusive range of source lengths for train/validation/test
LONG_LENGTHS = (31, 45)  # test_long
SPLIT_SIZES = {"train": 50_000, "validation": 2_000, "test": 2_000, "test_long": 2_000}

# `order(tokens)` → for each target position, the source position it copies.
Task = Callable[[list[str]], list[int]]


def _copy(tokens: list[str]) -> list[int]:
  return list(range(len(tokens)))


def _reverse(tokens: list[str]) -> list[int]:
  return list(range(len(tokens)))[::-1]


def _sort(tokens: list[str]) -> list[int]:
  return sorted(range(len(tokens)), key=lambda s: tokens[s])  # stable: ties keep order


def _swap(tokens: list[str]) -> list[int]:
  """Swaps neighbours (0↔1, 2↔3, …): local reordering, as adjective–noun order between
  languages; an odd last token stays."""
  n = len(tokens)
  return [s ^ 1 if s ^ 1 < n else s for s in range(n)]


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
  """A task: target token t is source token `order[t]`."""

  order: Task = _copy
  ambiguous_ties: bool = False  # equal letters are interchangeable (sort)


def example(tokens: list[str], config: SyntheticConfig) -> dict[str, str]:
  """The task's target and gold alignments for `tokens`."""
  order = config.order(tokens)
  sure = [(s, t) for t, s in enumerate(order)]
  possible = set(sure)
  if config.ambiguous_ties:
    possible |= {
      (s, t) for t, o in enumerate(order) for s, x in enumerate(tokens) if x == tokens[o]
    }
  return {
    "source": " ".join(tokens),
    "target": " ".join(tokens[s] for s in order),
    "alignment": _pharaoh(sure),
    "possible_alignment": _pharaoh(sorted(possible, key=lambda st: (st[1], st[0]))),
  }


def _pharaoh(links: list[tuple[int, int]]) -> str:
  return " ".join(f"{s}-{t}" for s, t in links)


def generate(config: SyntheticConfig, seed: int = SEED) -> dict[str, list[dict[str, str]]]:
  """Draws distinct sources (uniform lengths, uniform letters) for every split."""
  rng = np.random.default_rng([seed, zlib.crc32(config.name.encode())])
  seen: set[str] = set()
  splits = {}
  for split, size in SPLIT_SIZES.items():
    low, high = LONG_LENGTHS if split == "test_long" else TRAIN_LENGTHS
    examples = []
    while len(examples) < size:
      tokens = [ALPHABET[i] for i in rng.integers(len(ALPHABET), size=rng.integers(low, high + 1))]
      key = " ".join(tokens)
      if key not in seen:
        seen.add(key)
        examples.append(example(tokens, config))
    splits[split] = examples
  return splits


class Synthetic(tfds.core.GeneratorBasedBuilder):
  """TFDS builder of the synthetic tasks (generated locally; nothing is downloaded)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "copy, reverse, sort, swap."}
  BUILDER_CONFIGS: ClassVar[list[SyntheticConfig]] = [
    SyntheticConfig(name="copy", description="y = x.", order=_copy),
    SyntheticConfig(name="reverse", description="y = x backwards.", order=_reverse),
    SyntheticConfig(
      name="sort",
      description="y = the letters of x in alphabetical order.",
      order=_sort,
      ambiguous_ties=True,
    ),
    SyntheticConfig(name="swap", description="y = x with neighbours swapped.", order=_swap),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        f"{self.builder_config.description} Letters a-z, source lengths "
        f"{TRAIN_LENGTHS[0]}-{TRAIN_LENGTHS[1]} (train/validation/test) and "
        f"{LONG_LENGTHS[0]}-{LONG_LENGTHS[1]} (test_long); seed {SEED}. Gold alignments "
        "as Pharaoh source-target pairs."
      ),
      features=tfds.features.FeaturesDict(
        {
          "source": tfds.features.Text(),
          "target": tfds.features.Text(),
          "alignment": tfds.features.Text(),
          "possible_alignment": tfds.features.Text(),
        }
      ),
      supervised_keys=("source", "target"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # generated
    splits = generate(self.builder_config)
    return {name: self._generate_examples(examples) for name, examples in splits.items()}

  def _generate_examples(self, examples: list[dict[str, str]]):
    yield from enumerate(examples)
