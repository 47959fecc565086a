r"""Builds a dataset (if needed) and describes it: split sizes, lengths, examples.

  python -m experiments.data --dataset=synthetic/reverse --data_dir=~/tensorflow_datasets
  python -m experiments.data --dataset=debian_l10n/en-de --data_dir=DIR --fetch
  python -m experiments.data --dataset=debian_l10n/en-de --export=corpora/l10n_en_de
  python -m experiments.data --dataset=text --files=train=corpus/train.en,corpus/train.de \
      --files=test=corpus/test.tsv.gz

--fetch first downloads what a dataset reads from TFDS's manual directory
(`DIR/downloads/manual`), for the datasets that can (Debian packages at pinned versions).
--export writes every split as plain text, one sentence per line: `DIR/<split>.<lang>`
(`.source`/`.target` when the dataset names no languages) and `DIR/<split>.align` for
gold alignments; `experiments/configs/text.py:dir=DIR,pair=xx-yy` trains on them.
`--dataset=text` describes your own files, given per split as `dataset.files` takes them.
"""

import os
import sys

import numpy as np
from absl import app, flags

from experiments import cli

_DATASET = flags.DEFINE_string("dataset", None, "Dataset name, e.g. debian_l10n/en-de.")
_DATA_DIR = flags.DEFINE_string(
  "data_dir", "", "TFDS data directory; empty uses $TFDS_DATA_DIR or ~/tensorflow_datasets."
)
_FETCH = flags.DEFINE_bool("fetch", False, "Download the dataset's inputs to the manual dir.")
_EXAMPLES = flags.DEFINE_integer("examples", 3, "Examples to print per split.")
_EXPORT = flags.DEFINE_string(
  "export", "", "Also write every split as text files DIR/<split>.<lang> (see above)."
)
_FILES = flags.DEFINE_multi_string(
  "files",
  [],
  "With --dataset=text, a split's files: SPLIT=SRC,TGT[,ALIGN] or SPLIT=TSV (once per split).",
)
flags.mark_flags_as_required(["dataset"])


def _dataset(name: str, data_dir: str, given: list[str]):
  """--dataset, --data_dir and --files as the `dataset` section, opened."""
  from attn_research.data import datasets
  from attn_research.data.datasets import text
  from attn_research.errors import ConfigError

  is_text = datasets.parse_name(name)[0] == "text"
  if given and not is_text:
    raise ConfigError(f"--files is read only with --dataset=text, not {name}.")
  files = {}
  for item in given:
    split, sep, value = item.partition("=")
    if not sep or split not in text.SPLITS:
      raise ConfigError(
        f"--files={item}: write SPLIT=SRC,TGT[,ALIGN] or SPLIT=TSV with SPLIT one of "
        f"{', '.join(text.SPLITS)}."
      )
    problem = text.check_files(value)
    if problem:
      raise ConfigError(f"--files={item} {problem}.")
    files[split] = value
  if is_text and not files:
    raise ConfigError("--dataset=text needs --files=SPLIT=SRC,TGT (or SPLIT=TSV), once per split.")
  section = datasets.DatasetConfig(name=name, data_dir=data_dir, files=text.TextFiles(**files))
  return datasets.open_dataset(section)


def _lengths(texts: list[str]) -> str:
  words = np.array([len(t.split()) for t in texts])
  chars = np.array([len(t) for t in texts])
  return (
    f"words mean {words.mean():.1f} median {np.median(words):.0f} p95 "
    f"{np.percentile(words, 95):.0f} max {words.max()} | chars mean {chars.mean():.1f} max "
    f"{chars.max()}"
  )


def describe(name: str, splits: dict[str, dict[str, list[str]]], examples: int) -> str:
  """A plain-text report of a loaded dataset."""
  lines = [f"{name}: {sum(len(s['source']) for s in splits.values()):,} pairs"]
  for split, features in splits.items():
    lines.append(f"  {split}: {len(features['source']):,} pairs")
    if not features["source"]:
      continue
    for side in ("source", "target"):
      lines.append(f"    {side:6} {_lengths(features[side])}")
    for i in range(min(examples, len(features["source"]))):
      lines.append(f"    [{i}] {features['source'][i]}")
      lines.append(f"        → {features['target'][i]}")
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  dataset = _dataset(_DATASET.value, _DATA_DIR.value, _FILES.value)
  if _FETCH.value:
    if dataset.can_fetch:
      dataset.fetch()
    else:
      print(f"note: {dataset.name} has nothing to fetch; building it.", file=sys.stderr)
  splits = dataset.load()
  print(describe(dataset.name, splits, _EXAMPLES.value))
  if _EXPORT.value:
    from attn_research.data.datasets import text

    out_dir = os.path.expanduser(_EXPORT.value)
    names = dataset.languages if dataset.languages[0] else ("source", "target")
    for split, features in splits.items():
      for path in text.export(split, features, out_dir, names):
        print(f"wrote {path}")


if __name__ == "__main__":
  cli.run(main)
