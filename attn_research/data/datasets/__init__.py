"""Datasets by the name a config selects: `family` or `family/config` (e.g. `debian_l10n/en-de`).

`open_dataset(config.dataset)` returns a `Dataset`: it knows its splits and languages and
how to load a split into memory, stream it and fingerprint it. Every dataset reads as
split → feature → list, with text features `source` and `target` (config names `xx-yy`
translate from language xx into yy) plus dataset-specific extras such as `synthetic`'s
gold `alignment` (all text). Each family says how: TFDS builders of this package (built
offline into array_record), adapters over TFDS's own catalog builders, and `text`, the
user's own files (`dataset.files`).
"""

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Protocol

import ml_collections
import tensorflow_datasets as tfds

from attn_research.config import fields
from attn_research.config.fields import (
  NON_NEGATIVE,
  Choice,
  Constraint,
  DataDir,
  Int,
  Languages,
  field,
  section,
)
from attn_research.data import locks
from attn_research.data.datasets import array_records, debian_l10n, text
from attn_research.data.datasets.catalog import WMT14, WMT15
from attn_research.data.datasets.dates import Dates
from attn_research.data.datasets.iwslt15 import Iwslt15
from attn_research.data.datasets.synthetic import Synthetic
from attn_research.data.tokenizers import TOKENIZERS
from attn_research.errors import ConfigError
from attn_research.registry import Registry

Splits = dict[str, dict[str, list[str]]]


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One dataset, opened from its config section by `open_dataset`.

  Attributes:
    name: `family` or `family/config`.
    family: what reads it (`DATASETS`).
    config: the family's config (`en-de` of `debian_l10n/en-de`), "" for none.
    data_dir: the TFDS data directory, resolved.
    files: `text`'s files of each split.
    languages: (source, target) language codes; ("", "") when the dataset names none.
  """

  name: str
  family: "Family"
  config: str
  data_dir: str
  files: text.TextFiles
  languages: tuple[str, str]

  def split_names(self) -> list[str]:
    """The splits it has (building it if needed)."""
    return self.family.split_names(self)

  def load(self, splits: Sequence[str] | None = None) -> Splits:
    """Builds it if needed (offline for this package's builders) and reads `splits`
    (default: every split) into memory: split → feature → list of strings."""
    return self.family.load(self, splits)

  def stream(self, split: str) -> Iterator[tuple[str, str]]:
    """(source, target) texts of `split`, read lazily: a corpus larger than memory streams."""
    return self.family.stream(self, split)

  def fingerprint(self, split: str) -> str:
    """A hash of `split`'s data (its files' contents): it changes when the data does."""
    return self.family.fingerprint(self, split)

  @property
  def can_fetch(self) -> bool:
    """Whether `fetch` can download what it reads."""
    return hasattr(self.family, "fetch")

  def fetch(self) -> None:
    """Downloads what it reads into TFDS's manual directory of `data_dir`."""
    if not self.can_fetch:
      raise ConfigError(f"{self.name} has nothing to fetch; run without --fetch.")
    self.family.fetch(self.config, manual_dir(self.data_dir))

  def check(self, splits: Sequence[str]) -> None:
    """Fails before anything is built when the config cannot name training and `splits`
    (say, `text` without the files of one)."""
    self.family.check(self, ("train", *splits))


class Family(Protocol):
  """A family of datasets: one per config name."""

  configs: tuple[str, ...]

  def split_names(self, dataset: Dataset) -> list[str]: ...

  def load(self, dataset: Dataset, splits: Sequence[str] | None) -> Splits: ...

  def stream(self, dataset: Dataset, split: str) -> Iterator[tuple[str, str]]: ...

  def fingerprint(self, dataset: Dataset, split: str) -> str: ...

  def check(self, dataset: Dataset, splits: Sequence[str]) -> None: ...


class BuilderFamily:
  """A `tfds.core.GeneratorBasedBuilder` of this package, built as array_record."""

  check = staticmethod(text.refuse_files)

  def __init__(self, builder_cls: type[tfds.core.GeneratorBasedBuilder]):
    self.builder_cls = builder_cls
    self.configs = tuple(c.name for c in builder_cls.BUILDER_CONFIGS)

  def prepared(self, dataset: Dataset) -> tfds.core.DatasetBuilder:
    kwargs = {"config": dataset.config} if dataset.config else {}
    builder = self.builder_cls(data_dir=dataset.data_dir, file_format="array_record", **kwargs)
    # Trials started together build it once: the others wait, then find it built.
    with locks.exclusive(f"{builder.data_dir}.lock"):
      builder.download_and_prepare()
    return builder

  def split_names(self, dataset: Dataset) -> list[str]:
    return list(self.prepared(dataset).info.splits)

  def load(self, dataset: Dataset, splits: Sequence[str] | None) -> Splits:
    loaded = {}
    for split, source in self.prepared(dataset).as_data_source().items():
      if splits is None or split in splits:
        records = list(array_records.records(source))
        keys = records[0].keys() if records else ()
        loaded[split] = {k: [r[k].decode("utf-8") for r in records] for k in keys}
    return loaded

  def stream(self, dataset: Dataset, split: str) -> Iterator[tuple[str, str]]:
    source = self.prepared(dataset).as_data_source(split)
    for record in array_records.records(source):
      yield record["source"].decode("utf-8"), record["target"].decode("utf-8")

  def fingerprint(self, dataset: Dataset, split: str) -> str:
    return array_records.fingerprint(self.prepared(dataset), split)


class DebianL10nFamily(BuilderFamily):
  """`debian_l10n`, whose packages `experiments.data --fetch` downloads at pinned versions."""

  def __init__(self):
    super().__init__(debian_l10n.DebianL10n)

  def fetch(self, config: str, manual_dir: str) -> None:
    debian_l10n.fetch(config, manual_dir)


class TextFamily:
  """`text`: plain parallel text files, one `dataset.files` value per split (see `text`)."""

  configs: tuple[str, ...] = ()

  def split_names(self, dataset: Dataset) -> list[str]:
    return [split for split, value in dataclasses.asdict(dataset.files).items() if value]

  def load(self, dataset: Dataset, splits: Sequence[str] | None) -> Splits:
    return {
      split: text.read_split(value)
      for split, value in dataclasses.asdict(dataset.files).items()
      if value and (splits is None or split in splits)
    }

  def stream(self, dataset: Dataset, split: str) -> Iterator[tuple[str, str]]:
    return text.stream_pairs(getattr(dataset.files, split))

  def fingerprint(self, dataset: Dataset, split: str) -> str:
    return text.fingerprint(getattr(dataset.files, split))

  def check(self, dataset: Dataset, splits: Sequence[str]) -> None:
    for split in splits:
      if not getattr(dataset.files, split, ""):
        raise ConfigError(
          f"dataset.name=text needs dataset.files.{split}=SRC,TGT (or a TSV file); set it, or "
          f"drop {split} from eval.splits."
        )


DATASETS: Registry[Family] = Registry("dataset", "dataset.name")
DATASETS.register("dates")(BuilderFamily(Dates))
DATASETS.register("synthetic")(BuilderFamily(Synthetic))
DATASETS.register("debian_l10n")(DebianL10nFamily())
DATASETS.register("iwslt15")(BuilderFamily(Iwslt15))
DATASETS.register("wmt14_translate")(WMT14)
DATASETS.register("wmt15_translate")(WMT15)
DATASETS.register("text")(TextFamily())


def parse_name(name: str) -> tuple[str, str]:
  """`family/config` → (family, config), checking both; `family` alone needs no configs."""
  family_name, _, config = name.partition("/")
  family = DATASETS.get(family_name)
  if family.configs and config not in family.configs:
    raise ConfigError(
      f"dataset.name={name!r}: {family_name} needs one of the configs "
      f"{', '.join(f'{family_name}/{c}' for c in family.configs)}."
    )
  if not family.configs and config:
    raise ConfigError(f"dataset.name={name!r}: {family_name} has no configs; use {family_name!r}.")
  return family_name, config


@dataclasses.dataclass(frozen=True)
class DatasetName(Constraint):
  """`family` or `family/config` of a registered dataset."""

  def check(self, value, num_devices):
    if isinstance(value, str):
      try:
        parse_name(value)
        return None
      except ConfigError:
        pass
    names = (
      f"{family}/{config}" if config else family
      for family in DATASETS.names()
      for config in DATASETS.get(family).configs or ("",)
    )
    return self.problem(f"must be one of {', '.join(names)}")


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """`dataset`: which dataset, where it is stored, and its vocabulary."""

  name: str = field(DatasetName(), "", "set by each dataset config; see `experiments.variants`")
  data_dir: str = field(
    DataDir(), "", "TFDS data dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets"
  )
  vocab: str = field(Choice(names=TOKENIZERS), "word", "char | word | moses | spm | spm_bpe")
  vocab_size: int = field(
    NON_NEGATIVE, 0, "the most frequent tokens (0: all) or spm pieces (0: 8000)"
  )
  vocab_sentences: int = field(
    Int(low=0, note="0: every sentence"),
    1_000_000,
    "spm learns from a seeded random sample of this many training sentences (0: all)",
  )
  cache_dir: str = field(
    DataDir(),
    "",
    "token ids and vocabularies of training splits, shared by trials and hosts; '' = "
    "token_cache in the TFDS data dir",
  )
  languages: str = field(
    Languages(),
    "",
    "source and target codes xx-yy (tokenizer rules, sacreBLEU); '' = from the name "
    "(debian_l10n/en-de) or none",
  )
  files: text.TextFiles = section(text.TextFiles, "dataset.name=text: each split's files")


def open_dataset(config: "DatasetConfig | ml_collections.ConfigDict") -> Dataset:
  """The dataset `config` (the `dataset` section) names; nothing is read or built yet.

  Raises:
    ConfigError: an unknown name, or a value its key's constraint refuses.
  """
  if not isinstance(config, DatasetConfig):
    config = fields.parse(DatasetConfig, config, "dataset.")
  family_name, variant = parse_name(config.name)
  source, sep, target = (config.languages or variant).partition("-")
  named = sep and 2 <= len(source) <= 3 and 2 <= len(target) <= 3
  return Dataset(
    name=config.name,
    family=DATASETS.get(family_name),
    config=variant,
    data_dir=resolve_data_dir(config.data_dir),
    files=config.files,
    languages=(source, target) if named else ("", ""),
  )


def resolve_data_dir(data_dir: str) -> str:
  """`data_dir`, or TFDS's default when empty: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`."""
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR", "") or "~/tensorflow_datasets"
  return os.path.expanduser(data_dir)


def manual_dir(data_dir: str) -> str:
  """TFDS's default manual directory: where datasets read files that must be fetched."""
  return os.path.join(os.path.expanduser(data_dir), "downloads", "manual")
