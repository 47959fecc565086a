"""Reading a prepared TFDS builder's array_record splits: in chunks, and by content hash."""

import glob
import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import tensorflow_datasets as tfds

_CHUNK = 65_536  # records read per `__getitems__` call


def records(source: Any) -> Iterator[dict[str, Any]]:
  """Every record of a TFDS data source, in the stored order, `_CHUNK` at a time."""
  for start in range(0, len(source), _CHUNK):
    yield from source.__getitems__(range(start, min(start + _CHUNK, len(source))))


def digest(paths: Sequence[str]) -> str:
  """The SHA-256 of the files' contents, in order (each prefixed by its size)."""
  h = hashlib.sha256()
  for path in paths:
    h.update(os.path.getsize(path).to_bytes(8, "little"))
    with open(path, "rb") as f:
      while block := f.read(1 << 20):
        h.update(block)
  return h.hexdigest()


def fingerprint(builder: tfds.core.DatasetBuilder, split: str) -> str:
  """A hash of the prepared `builder`'s `split`: its name, version, config and shards."""
  shards = sorted(glob.glob(os.path.join(builder.data_dir, f"{builder.name}-{split}.*")))
  return hashlib.sha256(f"{builder.info.full_name} {split} {digest(shards)}".encode()).hexdigest()
