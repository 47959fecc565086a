"""Tokenised splits → padded batches of a small fixed set of shapes.

Every batch has one of `len(source_buckets) × len(target_buckets)` shapes, so the train
and eval steps compile a bounded number of times whatever the data. Training batches
come from a seeded, deterministic per-epoch plan; the iterator's position is two
integers (epoch, batch index) saved with each checkpoint, so a resumed run sees exactly
the batches an uninterrupted run would have seen. Evaluation keeps every example (the
last batch of a bucket is padded with zero-weight rows).
"""

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from attn_research.config.fields import Int, Lengths, field
from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary
from attn_research.errors import ConfigError
from attn_research.evaluation.alignment import parse_pharaoh

LINK_BASE = 1 << 16  # a gold link (s, t) is stored as the code t · LINK_BASE + s

Batch = dict[str, np.ndarray]


class Ragged(Sequence[np.ndarray]):
  """Variable-length id sequences stored end to end: item i is `ids[offsets[i]:offsets[i+1]]`.

  `ids` may be read from disk by slice (`token_cache.FileIds`), so a corpus larger than
  memory is read a batch at a time, not held as Python objects.
  """

  def __init__(self, ids: np.ndarray, lengths: np.ndarray):
    self.ids = ids
    self.lengths = np.asarray(lengths, np.int64)
    self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
    if self.offsets[-1] != len(ids):
      raise ValueError(f"Lengths sum to {self.offsets[-1]}, but there are {len(ids)} ids.")

  @classmethod
  def from_arrays(cls, arrays: Sequence[np.ndarray]) -> "Ragged":
    ids = np.concatenate([np.asarray(a, np.int32) for a in arrays]) if arrays else []
    return cls(np.asarray(ids, np.int32), np.array([len(a) for a in arrays], np.int64))

  def __len__(self) -> int:
    return len(self.lengths)

  def __getitem__(self, i: int) -> np.ndarray:
    return self.ids[self.offsets[i] : self.offsets[i + 1]]


def word_counts(texts: Iterable[str]) -> np.ndarray:
  """Whitespace-separated words per text (`data.max_train_words` counts these)."""
  return np.array([len(t.split()) for t in texts], np.int32)


@dataclasses.dataclass(frozen=True)
class EncodedSplit:
  """Token ids of one split (no `<s>`/`</s>`), with what training filters on and, for the
  splits that are evaluated, the texts they came from.

  Attributes:
    sources, targets: `[num_examples]` id sequences.
    source_words, target_words: `[num_examples]` whitespace-separated words of each text.
    target_blank: `[num_examples]` whether the target text is empty or whitespace.
    source_texts, target_texts: the texts; None for a training split read from the cache.
    alignments: gold links per example as codes `t · LINK_BASE + s` (0-based token
      positions), for guided alignment; None without.
  """

  sources: Ragged
  targets: Ragged
  source_words: np.ndarray
  target_words: np.ndarray
  target_blank: np.ndarray
  source_texts: list[str] | None = None
  target_texts: list[str] | None = None
  alignments: Ragged | None = None

  @classmethod
  def from_texts(
    cls,
    sources: Sequence[str],
    targets: Sequence[str],
    src_vocab: Vocabulary,
    tgt_vocab: Vocabulary,
  ) -> "EncodedSplit":
    return cls(
      sources=Ragged.from_arrays(src_vocab.encode_batch(list(sources))),
      targets=Ragged.from_arrays(tgt_vocab.encode_batch(list(targets))),
      source_words=word_counts(sources),
      target_words=word_counts(targets),
      target_blank=np.array([not t.strip() for t in targets], bool),
      source_texts=list(sources),
      target_texts=list(targets),
    )

  @classmethod
  def from_sources(cls, sources: Sequence[np.ndarray], texts: Sequence[str]) -> "EncodedSplit":
    """Source ids alone, for decoding (empty targets)."""
    n = len(sources)
    return cls(
      sources=Ragged.from_arrays(sources),
      targets=Ragged.from_arrays([np.zeros(0, np.int32)] * n),
      source_words=word_counts(texts),
      target_words=np.zeros(n, np.int32),
      target_blank=np.ones(n, bool),
      source_texts=list(texts),
      target_texts=[""] * n,
    )

  def __len__(self) -> int:
    return len(self.sources)

  def with_alignments(self, lines: Sequence[str], name: str) -> "EncodedSplit":
    """This split with gold Pharaoh alignments, one line per example (`s-t` links of
    0-based word positions; `s?t` possible links count as links too).

    Raises:
      ConfigError: a line count that differs from the examples; a token count that
        differs from the word count (the links index words, so a subword or character
        vocabulary would misplace them); a link outside its sentence.
    """
    if len(lines) != len(self):
      raise ConfigError(
        f"The {name} split has {len(self):,} examples but {len(lines):,} alignment lines; "
        "give one Pharaoh line per sentence pair."
      )
    split_words = (self.sources.lengths != self.source_words) | (
      self.targets.lengths != self.target_words
    )
    if split_words.any():
      i = int(np.flatnonzero(split_words)[0])
      raise ConfigError(
        f"Gold alignments link words, but the vocabulary splits {name} example #{i} into "
        f"{len(self.sources[i])} source and {len(self.targets[i])} target tokens for "
        f"{self.source_words[i]} and {self.target_words[i]} words; use dataset.vocab=word."
      )
    codes = []
    for i, line in enumerate(lines):
      try:
        links = sorted(parse_pharaoh(line))
      except ValueError as error:
        raise ConfigError(f"{name} alignment line {i + 1}: {error}") from None
      for s, t in links:
        if not (0 <= s < self.sources.lengths[i] and 0 <= t < self.targets.lengths[i]):
          raise ConfigError(
            f"{name} alignment line {i + 1} links {s}-{t}, outside its sentence of "
            f"{self.sources.lengths[i]} source and {self.targets.lengths[i]} target words."
          )
      codes.append(np.array([t * LINK_BASE + s for s, t in links], np.int32))
    return dataclasses.replace(self, alignments=Ragged.from_arrays(codes))


@dataclasses.dataclass(frozen=True)
class Buckets:
  """Padded lengths. A target needs one more position than its tokens (`<s>`/`</s>`).

  Attributes:
    source: increasing padded source lengths; the last is the longest source allowed.
    target: increasing padded target lengths, counting `</s>`.
  """

  source: tuple[int, ...]
  target: tuple[int, ...]

  def __post_init__(self):
    for name, lengths in (("source", self.source), ("target", self.target)):
      if not lengths or list(lengths) != sorted(set(lengths)) or lengths[0] < 1:
        raise ConfigError(
          f"data.{name}_buckets must be increasing positive lengths, got {lengths}."
        )

  def assign(self, split: EncodedSplit) -> np.ndarray:
    """`[num_examples, 2]` (source bucket, target bucket) indices; −1 where too long."""
    src_len = split.sources.lengths
    tgt_len = split.targets.lengths + 1
    src_b = np.searchsorted(self.source, src_len)
    tgt_b = np.searchsorted(self.target, tgt_len)
    too_long = (src_b == len(self.source)) | (tgt_b == len(self.target))
    return np.where(too_long[:, None], -1, np.stack([src_b, tgt_b], axis=1))


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """`data`: the padded shapes every batch takes, and the training length filter."""

  source_buckets: tuple[int, ...] = field(
    Lengths(), (16, 32, 64), "padded source lengths: every batch has one of them"
  )
  target_buckets: tuple[int, ...] = field(
    Lengths(), (17, 33, 65), "padded target lengths, counting </s>"
  )
  max_train_words: int = field(
    Int(low=0, note="0: no limit"),
    0,
    "training drops pairs with more words on either side (0 = no limit); evaluation keeps every pair",
  )

  @property
  def buckets(self) -> "Buckets":
    return Buckets(tuple(self.source_buckets), tuple(self.target_buckets))


def make_batch(
  split: EncodedSplit, indices: np.ndarray, src_pad: int, tgt_pad: int, batch_size: int
) -> Batch:
  """Pads examples `indices` into a `[batch_size, …]` batch.

  Returns:
    `src` `[batch, src_pad]` ids, `src_mask` bool, `tgt_in` (`<s>` + y) and `tgt_out`
    (y + `</s>`) `[batch, tgt_pad]`, `tgt_mask` bool, `index` `[batch]` (example index,
    −1 on filler rows, whose masks are all False); for a split with alignments,
    `alignment` `[batch, tgt_pad, src_pad]` float32, the gold links of each target
    position normalised to sum to 1 (0 where it has none).
  """
  src = np.full((batch_size, src_pad), PAD_ID, np.int32)
  tgt_in = np.full((batch_size, tgt_pad), PAD_ID, np.int32)
  tgt_out = np.full((batch_size, tgt_pad), PAD_ID, np.int32)
  src_mask = np.zeros((batch_size, src_pad), bool)
  tgt_mask = np.zeros((batch_size, tgt_pad), bool)
  index = np.full((batch_size,), -1, np.int32)
  for row, i in enumerate(indices):
    s, t = split.sources[i], split.targets[i]
    src[row, : len(s)] = s
    src_mask[row, : len(s)] = True
    tgt_in[row, 0] = BOS_ID
    tgt_in[row, 1 : len(t) + 1] = t
    tgt_out[row, : len(t)] = t
    tgt_out[row, len(t)] = EOS_ID
    tgt_mask[row, : len(t) + 1] = True
    index[row] = i
  batch = {
    "src": src,
    "src_mask": src_mask,
    "tgt_in": tgt_in,
    "tgt_out": tgt_out,
    "tgt_mask": tgt_mask,
    "index": index,
  }
  if split.alignments is not None:
    batch["alignment"] = gold_alignment(split.alignments, indices, batch_size, src_pad, tgt_pad)
  return batch


def gold_alignment(
  alignments: Ragged, indices: np.ndarray, batch_size: int, src_pad: int, tgt_pad: int
) -> np.ndarray:
  """`[batch_size, tgt_pad, src_pad]` G: each target position's gold links weighing
  1 / its number of links (Marian's and fairseq's normalisation), rows without links 0."""
  gold = np.zeros((batch_size, tgt_pad, src_pad), np.float32)
  for row, i in enumerate(indices):
    codes = alignments[i]
    gold[row, codes // LINK_BASE, codes % LINK_BASE] = 1.0
  links = gold.sum(axis=-1, keepdims=True)
  return np.divide(gold, links, out=gold, where=links > 0)


def batch_rows(
  buckets: Buckets, sb: int, tb: int, batch_size: int, batch_tokens: int, multiple: int = 1
) -> int:
  """Rows of a training batch of bucket shape (source `sb`, target `tb`): `batch_size`, or
  with a token budget the most rows, a multiple of `multiple`, whose padded
  max(source, target) lengths sum to at most `batch_tokens`.

  Raises:
    ConfigError: a budget too small for `multiple` rows of the largest shape.
  """
  if not batch_tokens:
    return batch_size
  longest = max(buckets.source[sb], buckets.target[tb])
  rows = batch_tokens // longest // multiple * multiple
  if rows < multiple:
    need = max(buckets.source[-1], buckets.target[-1]) * multiple
    raise ConfigError(
      f"train.batch_tokens={batch_tokens} holds no batch of {multiple} rows of "
      f"{longest} tokens; raise it to at least {need} (or lower the largest buckets)."
    )
  return rows


class TrainBatches(Iterator[Batch]):
  """Endless, seeded, resumable training batches.

  Each epoch shuffles the examples with `rng(seed, epoch)`, cuts every bucket into full
  batches (a bucket's remainder waits for a later epoch's shuffle) and shuffles the batch
  order. Examples with an empty side (no source tokens, or a whitespace-only target),
  longer than the largest bucket, or (when `max_words` > 0) with a source or target of
  more than `max_words` whitespace-separated words are dropped: the last is the papers'
  "sentences of up to 50 words" filter, which counts words whatever the tokenizer.
  `dropped` counts them by the first of these reasons that applies.
  """

  def __init__(
    self,
    split: EncodedSplit,
    buckets: Buckets,
    batch_size: int,
    seed: int,
    max_words: int = 0,
    batch_tokens: int = 0,
    multiple: int = 1,
    shard: tuple[int, int] | None = None,
  ):
    """`batch_tokens` > 0 replaces `batch_size` by a token budget: a batch of bucket shape
    (S, T) holds the most rows, a multiple of `multiple` (the devices), whose padded
    max(S, T) tokens stay within it (OpenNMT-py's `batch_type: tokens`), so short
    sentences come in larger batches, with one row count per shape.

    `shard` = (first, stop): build only the rows of devices [first, stop) of the
    `multiple` devices that split each batch (one host's devices under `jax.distributed`),
    so that a host reads only its part of the corpus; every host follows the same plan."""
    self.split = split
    self.multiple = multiple
    self.shard = shard or (0, multiple)
    self.buckets = buckets
    self.batch_size = batch_size
    self.rows = {
      (sb, tb): batch_rows(buckets, sb, tb, batch_size, batch_tokens, multiple)
      for sb in range(len(buckets.source))
      for tb in range(len(buckets.target))
    }
    self.seed = seed
    assigned = buckets.assign(split)
    empty = (split.sources.lengths == 0) | split.target_blank
    too_long = ~empty & (assigned[:, 0] < 0)
    too_many_words = np.zeros(len(split), bool)
    if max_words > 0:
      words = np.maximum(split.source_words, split.target_words)
      too_many_words = ~empty & ~too_long & (words > max_words)
    self.dropped = {
      "empty": int(empty.sum()),
      "too long for the buckets": int(too_long.sum()),
      "over data.max_train_words": int(too_many_words.sum()),
    }
    self.kept = np.flatnonzero(~(empty | too_long | too_many_words))
    self._bucket_of = assigned
    if len(self.kept) < min(self.rows.values()):
      limits = f"the buckets (source {buckets.source[-1]}, target {buckets.target[-1]})"
      fixes = "raise the largest bucket"
      if max_words > 0:
        limits += f" and data.max_train_words={max_words}"
        fixes += " or data.max_train_words"
      raise ConfigError(
        f"Only {len(self.kept)} training examples fit {limits}, fewer than one batch of "
        f"{min(self.rows.values())}; {fixes} or lower train.batch_size (or train.batch_tokens)."
      )
    self.epoch, self.position = 0, 0
    self._plan = self._make_plan(0)
    # Every epoch cuts the same number of batches from each bucket: only the order changes.
    self.batches_per_epoch = len(self._plan)

  def _make_plan(self, epoch: int) -> list[tuple[int, int, np.ndarray]]:
    rng = np.random.default_rng([self.seed, epoch])
    order = self.kept[rng.permutation(len(self.kept))]
    plan = []
    for sb in range(len(self.buckets.source)):
      for tb in range(len(self.buckets.target)):
        members = order[(self._bucket_of[order, 0] == sb) & (self._bucket_of[order, 1] == tb)]
        rows = self.rows[sb, tb]
        for start in range(0, len(members) - rows + 1, rows):
          plan.append((sb, tb, members[start : start + rows]))
    return [plan[i] for i in rng.permutation(len(plan))]

  def __next__(self) -> Batch:
    if self.position == len(self._plan):
      self.epoch, self.position = self.epoch + 1, 0
      self._plan = self._make_plan(self.epoch)
    sb, tb, indices = self._plan[self.position]
    self.position += 1
    per_device = len(indices) // self.multiple
    first, stop = self.shard
    indices = indices[first * per_device : stop * per_device]
    return make_batch(
      self.split, indices, self.buckets.source[sb], self.buckets.target[tb], len(indices)
    )

  def get_state(self) -> dict[str, int]:
    return {"epoch": self.epoch, "position": self.position}

  def set_state(self, state: dict[str, int]) -> None:
    self.epoch, self.position = int(state["epoch"]), int(state["position"])
    self._plan = self._make_plan(self.epoch)


def _assign_all(split: EncodedSplit, buckets: Buckets, name: str) -> np.ndarray:
  """`buckets.assign(split)`, raising if an example is longer than the largest bucket
  (dropping it would make the metric a different one)."""
  assigned = buckets.assign(split)
  too_long = np.flatnonzero(assigned[:, 0] < 0)
  if len(too_long):
    i = too_long[0]
    raise ConfigError(
      f"{len(too_long)} {name} examples do not fit the largest bucket (source "
      f"{buckets.source[-1]}, target {buckets.target[-1]} with </s>), e.g. #{i} with "
      f"{len(split.sources[i])} source and {len(split.targets[i]) + 1} target tokens; add a "
      "larger length to data.source_buckets / data.target_buckets."
    )
  return assigned


def eval_batches(split: EncodedSplit, buckets: Buckets, batch_size: int, name: str) -> list[Batch]:
  """Every example of `split`, grouped by bucket in index order, padded to full batches.

  Raises:
    ConfigError: if an example is longer than the largest bucket.
  """
  assigned = _assign_all(split, buckets, name)
  batches = []
  for sb, src_pad in enumerate(buckets.source):
    for tb, tgt_pad in enumerate(buckets.target):
      members = np.flatnonzero((assigned[:, 0] == sb) & (assigned[:, 1] == tb))
      for start in range(0, len(members), batch_size):
        batches.append(
          make_batch(split, members[start : start + batch_size], src_pad, tgt_pad, batch_size)
        )
  return batches


def decode_batches(
  split: EncodedSplit, buckets: Buckets, batch_size: int, name: str
) -> list[Batch]:
  """Every example of `split` for decoding, which needs no target: grouped by source
  bucket only and ordered by source length, so that a batch's sentences end at similar
  steps; padded to full batches of `src`, `src_mask` and `index`.

  Raises:
    ConfigError: if an example is longer than the largest bucket.
  """
  assigned = _assign_all(split, buckets, name)
  lengths = split.sources.lengths
  batches = []
  for sb, src_pad in enumerate(buckets.source):
    members = np.flatnonzero(assigned[:, 0] == sb)
    members = members[np.argsort(lengths[members], kind="stable")]
    for start in range(0, len(members), batch_size):
      indices = members[start : start + batch_size]
      batch = make_batch(split, indices, src_pad, buckets.target[-1], batch_size)
      batches.append({key: batch[key] for key in ("src", "src_mask", "index")})
  return batches
