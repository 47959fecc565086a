"""Translation datasets of TFDS's own catalog, under this package's direction-explicit names.

TFDS names a WMT config by its language pair (`wmt14_translate/de-en`) and gives each
example as `{language: text}`; a `TfdsTranslation` family names both directions
(`wmt14_translate/en-de`, `wmt14_translate/de-en`) and maps the texts to `source` and
`target`. The first build downloads the corpora from statmt.org (archives of about 1.7 GB
for de-en, 6.7 GB for fr-en, checked against TFDS's registered checksums), so it needs a
network; TFDS then writes array_record, which later loads read offline. TFDS's WMT builders run without
TensorFlow, except for TFDS's archive extractor (see `_extract_without_tensorflow`).

The splits are TFDS's: of each year's subset list, a builder keeps the subsets that hold
the pair, and it drops every pair with an empty side.

  * wmt14_translate de-en: train = europarl_v7 + commoncrawl + newscommentary_v9,
    validation = newstest2013, test = newstest2014 (fr-en: train adds multiun and gigafren).
  * wmt15_translate de-en: train = europarl_v7 + commoncrawl + newscommentary_v10,
    validation = newstest2014 (not 2013), test = newstest2015.
"""

import contextlib
import importlib.util
import types
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import requests
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core.download import extractor
from tensorflow_datasets.translate import wmt14, wmt15

from attn_research.data import locks
from attn_research.data.datasets import array_records, text
from attn_research.errors import ConfigError

if TYPE_CHECKING:
  from attn_research.data.datasets import Dataset


class TfdsTranslation:
  """A TFDS builder whose configs are language pairs, with one config per direction here.

  Attributes:
    name: the TFDS builder's name, also the family's name in `DATASETS`.
    configs: `xx-yy` for both directions of every pair.
  """

  def __init__(self, builder_cls: type[tfds.core.GeneratorBasedBuilder], pairs: tuple[str, ...]):
    self.builder_cls = builder_cls
    self.name = builder_cls.name
    self._pair_of: dict[str, str] = {}
    for pair in pairs:
      first, second = pair.split("-")
      self._pair_of[f"{second}-{first}"] = pair
      self._pair_of[pair] = pair
    self.configs = tuple(self._pair_of)

  check = staticmethod(text.refuse_files)

  def builder(self, config: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """TFDS's builder of the pair that holds direction `config`, writing array_record."""
    return self.builder_cls(
      config=self._pair_of[config], data_dir=data_dir, file_format="array_record"
    )

  def prepared(self, dataset: "Dataset") -> tfds.core.DatasetBuilder:
    """The dataset's builder, its splits prepared (downloaded and built the first time)."""
    config = dataset.config
    builder = self.builder(config, dataset.data_dir)
    try:
      with locks.exclusive(f"{builder.data_dir}.lock"), _extract_without_tensorflow():
        builder.download_and_prepare()
    except (requests.RequestException, tfds.download.DownloadError) as error:
      raise ConfigError(
        f"dataset.name={self.name}/{config}: building TFDS's {builder.info.full_name} "
        f"downloads the WMT corpora and needs a network ({type(error).__name__}); build it once "
        f"where there is one, or set dataset.data_dir to a TFDS data dir holding it prepared "
        f"as array_record."
      ) from error
    return builder

  def split_names(self, dataset: "Dataset") -> list[str]:
    return list(self.prepared(dataset).info.splits)

  def load(
    self, dataset: "Dataset", splits: Sequence[str] | None
  ) -> dict[str, dict[str, list[str]]]:
    sources = self.prepared(dataset).as_data_source()
    texts = {}
    for split, data in sources.items():
      if splits is None or split in splits:
        pairs = list(self._pairs(dataset.config, data))
        texts[split] = {"source": [p[0] for p in pairs], "target": [p[1] for p in pairs]}
    return texts

  def stream(self, dataset: "Dataset", split: str) -> Iterator[tuple[str, str]]:
    yield from self._pairs(dataset.config, self.prepared(dataset).as_data_source(split))

  def _pairs(self, config: str, data: Any) -> Iterator[tuple[str, str]]:
    """`{language: bytes}` records → (source, target) texts, in the stored order."""
    source, target = config.split("-")
    for record in array_records.records(data):
      yield record[source].decode("utf-8"), record[target].decode("utf-8")

  def fingerprint(self, dataset: "Dataset", split: str) -> str:
    digest = array_records.fingerprint(self.prepared(dataset), split)
    return f"{digest} {dataset.config}"


@contextlib.contextmanager
def _extract_without_tensorflow() -> Iterator[None]:
  """Lends TFDS's archive extractor, for the build, the two TensorFlow calls it makes.

  tfds 4.9.10 opens and writes extracted files with `tf.io.gfile.GFile` and decodes member
  names with `tf.compat.as_text` even where TensorFlow is not installed
  (https://github.com/tensorflow/datasets/issues/11058), so every build that extracts fails.
  Both calls are given here in plain Python; with TensorFlow installed nothing changes.
  """
  if importlib.util.find_spec("tensorflow") is not None:
    yield
    return
  gfile = types.SimpleNamespace(GFile=lambda path, mode: epath.Path(path).open(mode))
  compat = types.SimpleNamespace(
    as_text=lambda text: text.decode("utf-8") if isinstance(text, bytes) else text
  )
  saved = extractor.tf
  extractor.tf = types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile), compat=compat)
  try:
    yield
  finally:
    extractor.tf = saved


WMT14 = TfdsTranslation(wmt14.Wmt14Translate, ("de-en", "fr-en"))
WMT15 = TfdsTranslation(wmt15.Wmt15Translate, ("de-en",))
