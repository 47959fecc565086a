"""Datasets by the name a config selects: `family` or `family/config` (e.g. `debian_l10n/en-de`).

Every dataset reads as split → feature → list, with text features `source` and `target`
(config names `xx-yy` translate from language xx into yy) plus dataset-specific extras
such as `synthetic`'s gold `alignment` (all text). Families are TFDS builders of this
package (built offline into array_record), adapters over TFDS's own catalog builders, or
`text`: the user's own files (`dataset.files`).
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

import tensorflow_datasets as tfds

from attn_research.data import locks
from attn_research.data.datasets import array_records, debian_l10n, text
from attn_research.data.datasets.catalog import WMT14, WMT15
from attn_research.data.datasets.dates import Dates
from attn_research.data.datasets.iwslt15 import Iwslt15
from attn_research.data.datasets.synthetic import Synthetic
from attn_research.errors import ConfigError
from attn_research.registry import Registry

Splits = dict[str, dict[str, list[str]]]


class Family(Protocol):
  """A family of datasets: one per config name."""

  configs: tuple[str, ...]

  def load(self, config: str, data_dir: str | None, splits: Sequence[str] | None = None) -> Splits:
    """Builds the dataset if needed and reads `splits` (default: all) into memory."""
    ...

  def stream(self, config: str, data_dir: str | None, split: str) -> Iterator[tuple[str, str]]:
    """(source, target) texts of `split`, read lazily in the stored order."""
    ...

  def fingerprint(self, config: str, data_dir: str | None, split: str) -> str:
    """A hash of `split`'s data: equal hashes mean equal texts."""
    ...


class BuilderFamily:
  """A `tfds.core.GeneratorBasedBuilder` of this package, built as array_record."""

  def __init__(self, builder_cls: type[tfds.core.GeneratorBasedBuilder]):
    self.builder_cls = builder_cls
    self.configs = tuple(c.name for c in builder_cls.BUILDER_CONFIGS)

  def builder(self, config: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    kwargs = {"config": config} if config else {}
    return self.builder_cls(data_dir=data_dir, file_format="array_record", **kwargs)

  def prepared(self, config: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    builder = self.builder(config, data_dir)
    # Trials started together build it once: the others wait, then find it built.
    with locks.exclusive(f"{builder.data_dir}.lock"):
      builder.download_and_prepare()
    return builder

  def load(self, config: str, data_dir: str | None, splits: Sequence[str] | None = None) -> Splits:
    loaded = {}
    for split, source in self.prepared(config, data_dir).as_data_source().items():
      if splits is None or split in splits:
        records = list(array_records.records(source))
        keys = records[0].keys() if records else ()
        loaded[split] = {k: [r[k].decode("utf-8") for r in records] for k in keys}
    return loaded

  def stream(self, config: str, data_dir: str | None, split: str) -> Iterator[tuple[str, str]]:
    source = self.prepared(config, data_dir).as_data_source(split)
    for record in array_records.records(source):
      yield record["source"].decode("utf-8"), record["target"].decode("utf-8")

  def fingerprint(self, config: str, data_dir: str | None, split: str) -> str:
    return array_records.fingerprint(self.prepared(config, data_dir), split)


class DebianL10nFamily(BuilderFamily):
  """`debian_l10n`, whose packages `experiments.data --fetch` downloads at pinned versions."""

  def __init__(self):
    super().__init__(debian_l10n.DebianL10n)

  def fetch(self, config: str, manual_dir: str) -> None:
    debian_l10n.fetch(config, manual_dir)


class TextFamily:
  """`text`: plain parallel text files, which `load`, `stream` and `fingerprint` read from
  `dataset.files` (see `text`); it is registered so that configs and listings name it."""

  configs: tuple[str, ...] = ()


TEXT = "text"
DATASETS: Registry[Family] = Registry("dataset", "dataset.name")
DATASETS.register("dates")(BuilderFamily(Dates))
DATASETS.register("synthetic")(BuilderFamily(Synthetic))
DATASETS.register("debian_l10n")(DebianL10nFamily())
DATASETS.register("iwslt15")(BuilderFamily(Iwslt15))
DATASETS.register("wmt14_translate")(WMT14)
DATASETS.register("wmt15_translate")(WMT15)
DATASETS.register(TEXT)(TextFamily())


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


def languages(name: str, given: str = "") -> tuple[str, str]:
  """(source, target) language codes: `given` (`dataset.languages`) if set, else those of
  `family/xx-yy`; ("", "") when neither names any."""
  _, config = parse_name(name)
  source, sep, target = (given or config).partition("-")
  return (source, target) if sep and 2 <= len(source) <= 3 and 2 <= len(target) <= 3 else ("", "")


def check_files(name: str, files: Mapping[str, str], splits: Sequence[str]) -> None:
  """`text` needs the files of training and of every evaluated split; other datasets none."""
  if parse_name(name)[0] != TEXT:
    if any(files.values()):
      raise ConfigError(
        f"dataset.files is read only by dataset.name=text, not {name}; clear it or set "
        "dataset.name=text."
      )
    return
  for split in ("train", *splits):
    if not files.get(split):
      raise ConfigError(
        f"dataset.name=text needs dataset.files.{split}=SRC,TGT (or a TSV file); set it, or "
        f"drop {split} from eval.splits."
      )


def load(
  name: str,
  data_dir: str = "",
  files: Mapping[str, str] | None = None,
  splits: Sequence[str] | None = None,
) -> Splits:
  """Builds the dataset if needed (offline for this package's builders) and reads it.

  Args:
    name: `family`, `family/config` (see `DATASETS`) or `text`.
    data_dir: TFDS data directory; "" uses `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
    files: `text`'s split → files (`dataset.files`).
    splits: the splits to read (default: every split).

  Returns:
    split → feature → list of strings.
  """
  family_name, config = parse_name(name)
  if family_name == TEXT:
    return text.load({s: v for s, v in (files or {}).items() if splits is None or s in splits})
  return DATASETS.get(family_name).load(config, _data_dir(data_dir), splits)


def stream(
  name: str, data_dir: str, files: Mapping[str, str] | None, split: str
) -> Iterator[tuple[str, str]]:
  """(source, target) texts of `split`, read lazily: a corpus larger than memory streams."""
  family_name, config = parse_name(name)
  if family_name == TEXT:
    return text.stream_pairs((files or {})[split])
  return DATASETS.get(family_name).stream(config, _data_dir(data_dir), split)


def fingerprint(name: str, data_dir: str, files: Mapping[str, str] | None, split: str) -> str:
  """A hash of `split`'s data (its files' contents): it changes when the data does."""
  family_name, config = parse_name(name)
  if family_name == TEXT:
    return text.fingerprint((files or {})[split])
  return DATASETS.get(family_name).fingerprint(config, _data_dir(data_dir), split)


def split_names(name: str, data_dir: str = "", files: Mapping[str, str] | None = None) -> list[str]:
  """The splits dataset `name` has (building it if needed)."""
  family_name, config = parse_name(name)
  if family_name == TEXT:
    return [split for split, value in (files or {}).items() if value]
  family = DATASETS.get(family_name)
  return list(family.prepared(config, _data_dir(data_dir)).info.splits)


def _data_dir(data_dir: str) -> str | None:
  return os.path.expanduser(data_dir) if data_dir else None


def resolve_data_dir(data_dir: str) -> str:
  """`data_dir`, or TFDS's default when empty: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`."""
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR", "") or "~/tensorflow_datasets"
  return os.path.expanduser(data_dir)


def can_fetch(name: str) -> bool:
  """Whether `fetch` can download what dataset `name` reads."""
  return hasattr(DATASETS.get(parse_name(name)[0]), "fetch")


def manual_dir(data_dir: str) -> str:
  """TFDS's default manual directory: where datasets read files that must be fetched."""
  return os.path.join(os.path.expanduser(data_dir), "downloads", "manual")


def fetch(name: str, data_dir: str) -> None:
  """Downloads what dataset `name` reads from the manual directory of `data_dir`."""
  if not can_fetch(name):
    raise ConfigError(f"{name} has nothing to fetch; run without --fetch.")
  family_name, config = parse_name(name)
  DATASETS.get(family_name).fetch(config, manual_dir(data_dir))
