"""`text`: the user's own parallel corpus, read from plain text files.

Each split's `dataset.files.<split>` is one of
  * `SRC,TGT`: two files with one sentence per line, line i of each forming a pair;
  * `SRC,TGT,ALIGN`: plus a Pharaoh alignment per line (`s-t` sure links, `s?t` possible
    ones), for AER;
  * `TSV`: one file of `source<TAB>target[<TAB>alignment]` lines.
Files ending in `.gz` are read through gzip; lines may end in LF or CRLF and a leading
UTF-8 byte-order mark is dropped. Every line is kept as it is otherwise, so that empty
pairs stay in the evaluation splits (training drops them, see `TrainBatches`) and a
dataset exported by `python -m experiments.data --export` reads back unchanged.
"""

import dataclasses
import gzip
import itertools
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

from attn_research.config.fields import Constraint, field
from attn_research.data.datasets import array_records
from attn_research.errors import ConfigError
from attn_research.runs import atomic_write

if TYPE_CHECKING:
  from attn_research.data.datasets import Dataset

SPLITS = ("train", "validation", "test")
BOM = "\ufeff"


def parse_files(value: str) -> list[str]:
  """`dataset.files.<split>` → its 1–3 paths (user-expanded); [] when empty."""
  paths = [os.path.expanduser(p.strip()) for p in value.split(",")] if value.strip() else []
  if len(paths) > 3 or any(not p for p in paths):
    raise ConfigError(f"{value!r} is not TSV, SRC,TGT or SRC,TGT,ALIGN (comma-separated paths).")
  return paths


def check_files(value: str) -> str | None:
  """Why a `dataset.files.<split>` value cannot be read (a missing file, a bad list), else
  None; reads nothing."""
  try:
    paths = parse_files(value)
  except ConfigError:
    return "must be TSV, SRC,TGT or SRC,TGT,ALIGN (comma-separated paths)"
  for path in paths:
    if not os.path.isfile(path):
      return f"names {path}, which is not a file; fix the path"
  return None


@dataclasses.dataclass(frozen=True)
class CorpusFiles(Constraint):
  """ "" or a text split's existing `TSV`, `SRC,TGT` or `SRC,TGT,ALIGN` files."""

  def check(self, value, num_devices):
    if not isinstance(value, str):
      return self.problem("must be a string of comma-separated paths")
    problem = check_files(value)
    return self.problem(problem) if problem else None


_FILES_DOC = "dataset.name=text: the split's SRC,TGT[,ALIGN] files or one TSV file"


@dataclasses.dataclass(frozen=True)
class TextFiles:
  """`dataset.files`: the files of each split of `dataset.name=text`."""

  train: str = field(CorpusFiles(), "", _FILES_DOC)
  validation: str = field(CorpusFiles(), "", _FILES_DOC)
  test: str = field(CorpusFiles(), "", _FILES_DOC)


def refuse_files(dataset: "Dataset", splits: Sequence[str]) -> None:
  """The check of a family that reads no `dataset.files`: it refuses them."""
  del splits
  if any(dataclasses.astuple(dataset.files)):
    raise ConfigError(
      f"dataset.files is read only by dataset.name=text, not {dataset.name}; clear it or set "
      "dataset.name=text."
    )


def decode_lines(f: BinaryIO, name: str) -> Iterator[str]:
  """The lines of a binary UTF-8 stream without their line ends (LF or CRLF) or a leading
  byte-order mark, read lazily.

  Raises:
    ConfigError: naming `name` and the line that is not UTF-8.
  """
  for number, raw in enumerate(f, 1):
    try:
      line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      raise ConfigError(
        f"{name}:{number}: byte {e.start + 1} of the line is not UTF-8; convert the file "
        "(e.g. iconv -f LATIN1 -t UTF-8)."
      ) from None
    line = line.rstrip("\n").removesuffix("\r")
    yield line.removeprefix(BOM) if number == 1 else line


def stream_lines(path: str) -> Iterator[str]:
  """The lines of a UTF-8 text file (`.gz`: gzip), read lazily, as `decode_lines` gives
  them.

  Raises:
    ConfigError: naming the file (and line) when it is missing, not gzip or not UTF-8.
  """
  if not os.path.isfile(path):
    raise ConfigError(f"No file {path}; fix the path.")
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      yield from decode_lines(f, path)
  except (OSError, EOFError, zlib.error) as e:
    fix = "recompress or unpack it" if opener is gzip.open else "check its permissions"
    raise ConfigError(f"{path} cannot be read ({e}); {fix}.") from None


def read_lines(path: str) -> list[str]:
  """Every line of `stream_lines(path)`."""
  return list(stream_lines(path))


def _fields(line: str, path: str, number: int) -> list[str]:
  """A TSV line's source, target and optional alignment."""
  row = line.split("\t")
  if not 2 <= len(row) <= 3:
    raise ConfigError(
      f"{path}:{number}: {len(row)} tab-separated fields; TSV lines are "
      "source<TAB>target[<TAB>alignment]."
    )
  return row


def _columns(path: str) -> list[list[str]]:
  """A TSV file's source, target and (if any line has one) alignment columns."""
  rows = [_fields(line, path, number) for number, line in enumerate(stream_lines(path), 1)]
  width = max((len(r) for r in rows), default=2)
  return [[r[i] if i < len(r) else "" for r in rows] for i in range(max(2, width))]


def _mismatch(paths: list[str], counts: list[int]) -> ConfigError:
  listed = ", ".join(f"{p} has {n:,} lines" for p, n in zip(paths, counts, strict=True))
  return ConfigError(f"Parallel files differ in length: {listed}; they must pair line by line.")


def stream_pairs(value: str) -> Iterator[tuple[str, str]]:
  """(source, target) of one split's `dataset.files.<split>` value, read lazily (an
  alignment file is checked for its length, not read).

  Raises:
    ConfigError: as `read_split`, when the bad line or the end of the files is reached.
  """
  paths = parse_files(value)
  if len(paths) == 1:
    for number, line in enumerate(stream_lines(paths[0]), 1):
      source, target = _fields(line, paths[0], number)[:2]
      yield source, target
    return
  if len(paths) < 2:
    raise ConfigError(f"{value!r} is not TSV, SRC,TGT or SRC,TGT,ALIGN.")
  counts = [0] * len(paths)
  for lines in itertools.zip_longest(*(stream_lines(p) for p in paths)):
    for i, line in enumerate(lines):
      counts[i] += line is not None
    if None in lines:
      continue  # counting the longer files' lines for the error
    yield lines[0], lines[1]
  if len(set(counts)) > 1:
    raise _mismatch(paths, counts)


def fingerprint(value: str) -> str:
  """A hash of the contents of one split's files (not their names or dates)."""
  return f"text {array_records.digest(parse_files(value))}"


def _alignments(lines: list[str]) -> dict[str, list[str]]:
  """Pharaoh lines → `alignment` (sure links) and `possible_alignment` (sure + `s?t`)."""
  sure = [" ".join(p for p in line.split() if "?" not in p) for line in lines]
  return {"alignment": sure, "possible_alignment": [" ".join(line.split()) for line in lines]}


def read_split(value: str) -> dict[str, list[str]]:
  """One split from its `dataset.files.<split>` value: `source`, `target` and, with an
  alignment, `alignment` and `possible_alignment`.

  Raises:
    ConfigError: a missing, non-UTF-8 or malformed file, or files of different lengths.
  """
  paths = parse_files(value)
  columns = _columns(paths[0]) if len(paths) == 1 else [read_lines(p) for p in paths]
  if len(columns) < 2:
    raise ConfigError(f"{value!r} is not TSV, SRC,TGT or SRC,TGT,ALIGN.")
  if len({len(c) for c in columns}) > 1:
    raise _mismatch(paths, [len(c) for c in columns])
  split = {"source": columns[0], "target": columns[1]}
  if len(columns) == 3:
    split.update(_alignments(columns[2]))
  return split


def _possible_only(sure: str, possible: str) -> str:
  """The links of `possible` that `sure` lacks, as `s?t`."""
  links = set(sure.split())
  return " ".join(p.replace("-", "?") for p in possible.split() if p not in links)


def export(
  split: str, features: Mapping[str, list[str]], out_dir: str, names: tuple[str, str]
) -> list[str]:
  """Writes one split as `out_dir/<split>.<names[0]>` and `.<names[1]>` (plus `.align` for
  gold alignments, possible links as `s?t`), the files `read_split` reads back unchanged.

  Returns:
    The paths written.

  Raises:
    ConfigError: a text holding a line break, which one line per sentence cannot keep.
  """
  columns = [features["source"], features["target"]]
  if "alignment" in features:
    possible = features.get("possible_alignment", features["alignment"])
    columns.append(
      [
        " ".join(filter(None, (sure, _possible_only(sure, extra))))
        for sure, extra in zip(features["alignment"], possible, strict=True)
      ]
    )
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for column, name in zip(columns, (*names, "align")[: len(columns)], strict=True):
    for number, line in enumerate(column, 1):
      if "\n" in line or "\r" in line:
        raise ConfigError(
          f"{split} pair {number} ({name}) holds a line break, which a one-sentence-per-line "
          "file cannot keep; export another dataset or clean that pair."
        )
    paths.append(os.path.join(out_dir, f"{split}.{name}"))
    atomic_write(paths[-1], "".join(line + "\n" for line in column))
  return paths
