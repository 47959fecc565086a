"""TFDS builders shipped with the package, by the name a config selects."""

import os

import tensorflow_datasets as tfds

from attn_research.data.datasets.dates import Dates
from attn_research.registry import Registry

DATASETS: Registry[type[tfds.core.GeneratorBasedBuilder]] = Registry("dataset", "dataset.name")
DATASETS.register("dates")(Dates)


def load(name: str, data_dir: str = "") -> dict[str, dict[str, list[str]]]:
  """Builds the dataset if needed (array_record, offline) and reads every split.

  Args:
    name: name in `DATASETS`.
    data_dir: TFDS data directory; "" uses `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.

  Returns:
    split → feature → list of strings (all text features, in the stored order).
  """
  builder = DATASETS.get(name)(
    data_dir=os.path.expanduser(data_dir) if data_dir else None, file_format="array_record"
  )
  builder.download_and_prepare()
  splits = {}
  for split, source in builder.as_data_source().items():
    records = source.__getitems__(range(len(source)))
    keys = records[0].keys() if records else ()
    splits[split] = {k: [r[k].decode("utf-8") for r in records] for k in keys}
  return splits
