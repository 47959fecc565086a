r"""Your own parallel corpus, read from plain text files (`dataset.name=text`).

  python -m experiments.data --dataset=debian_l10n/en-de --export=corpora/l10n   # for example
  python -m experiments.train --config=experiments/configs/text.py:corpora/l10n,pair=en-de \
      --workdir=runs/my_corpus

The argument is `DIR[,pair=xx-yy][,steps=N][,max_words=N]`. Split `s` reads `DIR/s.xx`
and `DIR/s.yy` (`DIR/s.source` and `DIR/s.target` without a pair; each may be `.gz`),
one sentence per line, plus `DIR/s.align` (Pharaoh links, for AER) where it exists.
`train` is required; `validation` picks the best checkpoint; `test` is evaluated when
present. Other layouts set the files directly, as `SRC,TGT[,ALIGN]` or one TSV file of
`source<TAB>target[<TAB>alignment]` lines:

  python -m experiments.train --config=experiments/configs/text.py --workdir=runs/x \
      --config.dataset.files.train=data/train.tsv.gz \
      --config.dataset.files.validation=data/dev.en,data/dev.de \
      --config.dataset.files.test=data/test.en,data/test.de --config.dataset.languages=en-de

The model and training are `debian_l10n.py`'s default: SentencePiece (8000 pieces per
side, trained on the training split), a bidirectional LSTM encoder (2 × 256) and a Luong
decoder with input feeding and global `general` attention, Adam for `steps` (default
3000) batches of 64 pairs; training drops pairs with an empty side, longer than the
largest buckets (128 source, 149 target pieces) or with more than `max_words` words
(default 0: no limit); evaluation keeps every pair.
"""

import os

import ml_collections

from attn_research.config import files as config_files
from experiments.configs import debian_l10n


def _split_files(directory: str, split: str, names: tuple[str, str]) -> str:
  """`SRC,TGT[,ALIGN]` of `split` in `directory` (each plain or `.gz`); "" when absent."""

  def find(name: str) -> str:
    path = os.path.join(directory, f"{split}.{name}")
    return next((p for p in (path, path + ".gz") if os.path.isfile(p)), "")

  source, target, align = (find(name) for name in (*names, "align"))
  if not (source and target):
    return ""
  return ",".join(filter(None, (source, target, align)))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_files.parse_arg(arg, dir="", pair="", steps=0, max_words=0)
  config = debian_l10n.get_config()
  config.dataset.name = "text"
  config.dataset.languages = args.pair
  config.data.max_train_words = args.max_words
  if args.steps:
    config.train.num_steps = args.steps
  if args.dir:
    directory = os.path.expanduser(args.dir)
    names = tuple(args.pair.split("-")) if args.pair else ("source", "target")
    for split in config.dataset.files:
      config.dataset.files[split] = _split_files(directory, split, names)
    config.eval.splits = ("validation", "test") if config.dataset.files.test else ("validation",)
  return config
