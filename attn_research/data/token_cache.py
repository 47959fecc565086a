"""Token ids of a dataset split on disk, built once per (data, vocabularies) and shared.

A training split is tokenised once into `<cache_dir>/tokens-<key>/`, whose key hashes the
split's fingerprint (a hash of its data files, see `datasets.fingerprint`) and both
vocabularies, so every trial of a sweep and every host that shares the directory read the
same ids, and a changed data file or vocabulary gets a new cache. Vocabularies built from
a training split are cached the same way (`vocab-<key>.json`).

A cache is built in a temporary directory, under a lock that a concurrent builder of the
same key waits on, and renamed into place: a reader sees a whole cache or none, and a
killed build leaves only its temporary directory, which the next build removes.

Layout: `source.ids` and `target.ids` hold every example's ids end to end (uint16 when the
vocabulary allows, else int32), read a batch's rows at a time with `pread`, not held in
memory or mapped (a memory map's pages would count in the process's resident memory, up to
the whole file); `examples.npz` holds the per-example lengths, word counts and blank-target
flags that batching and filtering need; `meta.json` the counts that opening checks.
"""

import contextlib
import glob
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterable

import numpy as np

from attn_research.data import locks
from attn_research.data.pipeline import EncodedSplit, Ragged
from attn_research.data.vocab import Vocabulary
from attn_research.errors import ConfigError
from attn_research.runs import atomic_write

FORMAT = 1  # bump when the layout or the encoding changes: old caches are then unused
_CHUNK = 65_536  # examples encoded per write
SIDES = ("source", "target")


def key(*parts: str) -> str:
  """A cache key: the hash of `parts` and `FORMAT`."""
  digest = hashlib.sha256(f"attn_research token cache {FORMAT}".encode())
  for part in parts:
    digest.update(len(part).to_bytes(8, "little") + part.encode())
  return digest.hexdigest()[:32]


class TokenCache:
  """Cached vocabularies and encoded splits under one directory."""

  def __init__(self, directory: str):
    self.directory = os.path.expanduser(directory)

  def _prepare(self) -> None:
    try:
      os.makedirs(self.directory, exist_ok=True)
    except OSError as e:
      raise ConfigError(
        f"Cannot create the token cache {self.directory} ({e.strerror}); set "
        "dataset.cache_dir to a writable directory."
      ) from None

  def vocabulary(self, cache_key: str, build: Callable[[], Vocabulary]) -> tuple[Vocabulary, bool]:
    """The vocabulary cached under `cache_key`, else `build()`'s, cached.

    Returns:
      (the vocabulary, whether it was built now).
    """
    self._prepare()
    path = os.path.join(self.directory, f"vocab-{cache_key}.json")
    with locks.exclusive(path + ".lock"):
      if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
          return Vocabulary.from_json(f.read()), False
      vocab = build()
      atomic_write(path, vocab.to_json())
      return vocab, True

  def split(
    self,
    cache_key: str,
    pairs: Callable[[], Iterable[tuple[str, str]]],
    src_vocab: Vocabulary,
    tgt_vocab: Vocabulary,
  ) -> tuple[EncodedSplit, bool]:
    """The split cached under `cache_key` (without texts), else `pairs()` encoded with the
    vocabularies and cached.

    Returns:
      (the split, whether it was built now).
    """
    self._prepare()
    path = os.path.join(self.directory, f"tokens-{cache_key}")
    with locks.exclusive(path + ".lock"):
      built = not os.path.isdir(path)
      if built:
        for stale in glob.glob(f"{path}.tmp-*"):  # left by a killed build
          shutil.rmtree(stale, ignore_errors=True)
        temporary = f"{path}.tmp-{os.getpid()}"
        try:
          _write(temporary, pairs(), src_vocab, tgt_vocab)
          os.rename(temporary, path)
        finally:
          shutil.rmtree(temporary, ignore_errors=True)
    return _open(path), built


class FileIds:
  """A file of ids read by position: `ids[a:b]` reads those ids from disk (through the
  page cache, which the operating system manages, not this process)."""

  def __init__(self, path: str, dtype: np.dtype, size: int):
    self.path, self.dtype, self._size = path, np.dtype(dtype), size
    self._fd = os.open(path, os.O_RDONLY)

  def __len__(self) -> int:
    return self._size

  def __getitem__(self, span: slice) -> np.ndarray:
    start, stop, _ = span.indices(self._size)
    count = max(stop - start, 0)
    data = os.pread(self._fd, count * self.dtype.itemsize, start * self.dtype.itemsize)
    return np.frombuffer(data, self.dtype)

  def __del__(self):
    os.close(self._fd)


def _dtype(vocab: Vocabulary) -> np.dtype:
  return np.dtype(np.uint16 if len(vocab) <= np.iinfo(np.uint16).max + 1 else np.int32)


def _write(
  path: str, pairs: Iterable[tuple[str, str]], src_vocab: Vocabulary, tgt_vocab: Vocabulary
) -> None:
  """Encodes `pairs` into a new cache directory `path`, `_CHUNK` pairs at a time."""
  os.makedirs(path)
  dtypes = {"source": _dtype(src_vocab), "target": _dtype(tgt_vocab)}
  columns: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
  with contextlib.ExitStack() as stack:
    files = {
      side: stack.enter_context(open(os.path.join(path, f"{side}.ids"), "wb")) for side in SIDES
    }
    pairs = iter(pairs)
    while chunk := list(itertools.islice(pairs, _CHUNK)):
      part = EncodedSplit.from_texts(*zip(*chunk, strict=True), src_vocab, tgt_vocab)
      for side, ragged in (("source", part.sources), ("target", part.targets)):
        files[side].write(ragged.ids.astype(dtypes[side]).tobytes())
      for name, values in _columns(part).items():
        columns[name].append(values)
    for f in files.values():
      f.flush()
      os.fsync(f.fileno())
  arrays = {
    name: np.concatenate(parts) if parts else np.zeros(0, _COLUMNS[name])
    for name, parts in columns.items()
  }
  with open(os.path.join(path, "examples.npz"), "wb") as f:
    np.savez(f, **arrays)
  meta = {
    "format": FORMAT,
    "examples": len(arrays["target_blank"]),
    **{f"{side}_dtype": dtypes[side].name for side in SIDES},
    **{f"{side}_ids": int(arrays[f"{side}_lengths"].sum()) for side in SIDES},
  }
  atomic_write(os.path.join(path, "meta.json"), json.dumps(meta))


# What `examples.npz` holds of a split besides its ids, and the dtypes it stores them in.
_COLUMNS = {
  "source_lengths": np.int32,
  "target_lengths": np.int32,
  "source_words": np.int32,
  "target_words": np.int32,
  "target_blank": bool,
}


def _columns(split: EncodedSplit) -> dict[str, np.ndarray]:
  values = {
    "source_lengths": split.sources.lengths,
    "target_lengths": split.targets.lengths,
    "source_words": split.source_words,
    "target_words": split.target_words,
    "target_blank": split.target_blank,
  }
  return {name: np.asarray(v, _COLUMNS[name]) for name, v in values.items()}


def _open(path: str) -> EncodedSplit:
  """The split of cache directory `path`, its ids read from disk as batches need them.

  Raises:
    ConfigError: a cache whose files do not match its `meta.json` (damaged on disk).
  """
  try:
    with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
      meta = json.load(f)
    with np.load(os.path.join(path, "examples.npz")) as examples:
      columns = {name: examples[name] for name in examples.files}
    ids = {}
    for side in SIDES:
      file = os.path.join(path, f"{side}.ids")
      dtype = np.dtype(meta[f"{side}_dtype"])
      if os.path.getsize(file) != meta[f"{side}_ids"] * dtype.itemsize:
        raise ValueError(f"{file} does not hold {meta[f'{side}_ids']} ids")
      ids[side] = FileIds(file, dtype, meta[f"{side}_ids"])
    if len(columns["target_blank"]) != meta["examples"]:
      raise ValueError("examples.npz does not match meta.json")
    return EncodedSplit(
      sources=Ragged(ids["source"], columns["source_lengths"]),
      targets=Ragged(ids["target"], columns["target_lengths"]),
      source_words=columns["source_words"],
      target_words=columns["target_words"],
      target_blank=columns["target_blank"],
    )
  except (OSError, ValueError, KeyError) as e:
    raise ConfigError(
      f"The token cache {path} is damaged ({e}); delete that directory and it is rebuilt."
    ) from None
