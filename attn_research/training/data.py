"""A run's dataset: built or loaded once, encoded with the run's vocabularies."""

import dataclasses
import os
from collections.abc import Callable, Sequence

import ml_collections
from absl import logging

from attn_research import runs
from attn_research.data import datasets, token_cache
from attn_research.data.pipeline import Buckets, EncodedSplit
from attn_research.data.token_cache import TokenCache
from attn_research.data.vocab import Vocabulary
from attn_research.errors import ConfigError


@dataclasses.dataclass
class Data:
  """A dataset encoded with the run's vocabularies.

  Attributes:
    gold: split → feature → strings for the features besides source and target (such
      as `synthetic`'s gold alignments).
    target_lang: target language code, "" when the dataset does not name one.
  """

  src_vocab: Vocabulary
  tgt_vocab: Vocabulary
  splits: dict[str, EncodedSplit]
  buckets: Buckets
  gold: dict[str, dict[str, list[str]]]
  target_lang: str


def prepare_data(
  config: ml_collections.ConfigDict,
  run: runs.Workdir,
  eval_splits: Sequence[str] | None = None,
  note: Callable[[str], None] = logging.info,
) -> Data:
  """The training split through the token cache and the evaluated splits (default
  `eval.splits`) in memory with their texts. The vocabularies come from the run if it has
  them, else from the cache or built from the streamed training split, and are stored in
  the run."""
  section = config.dataset
  dataset = datasets.open_dataset(section)
  eval_splits = tuple(config.eval.splits if eval_splits is None else eval_splits)
  available = dataset.split_names()
  for split in ("train", *eval_splits):
    if split not in available:
      raise ConfigError(
        f"Dataset {dataset.name!r} has no {split} split (it has {', '.join(available)}); fix "
        "eval.splits (or the split to evaluate)."
      )
  raw = dataset.load(eval_splits)
  languages = dataset.languages
  cache = TokenCache(cache_dir(section))
  train_data = dataset.fingerprint("train")
  vocabs = []
  for side, (filename, lang) in enumerate(
    zip((runs.SOURCE_VOCAB, runs.TARGET_VOCAB), languages, strict=True)
  ):
    if run.exists(filename):
      vocabs.append(Vocabulary.from_json(run.read_text(filename)))
      continue
    vocab_key = token_cache.key(
      train_data, str(side), section.vocab, str(section.vocab_size), lang,
      str(section.vocab_sentences),
    )  # fmt: skip

    def build(side=side, lang=lang) -> Vocabulary:
      texts = (pair[side] for pair in dataset.stream("train"))
      return Vocabulary.build(
        texts, section.vocab, section.vocab_size, lang, section.vocab_sentences
      )

    vocab, built = cache.vocabulary(vocab_key, build)
    note(f"{_verb(built)} the {_SIDES[side]} vocabulary ({len(vocab):,} ids).")
    run.write_text(filename, vocab.to_json())
    vocabs.append(vocab)
  src_vocab, tgt_vocab = vocabs
  splits = {
    split: EncodedSplit.from_texts(s["source"], s["target"], src_vocab, tgt_vocab)
    for split, s in raw.items()
  }
  if "train" not in splits:
    splits["train"], built = cache.split(
      token_cache.key(train_data, src_vocab.to_json(), tgt_vocab.to_json()),
      lambda: dataset.stream("train"),
      src_vocab,
      tgt_vocab,
    )
    note(
      f"{_verb(built)} the training split's token ids ({len(splits['train']):,} pairs) in "
      f"{cache.directory}."
    )
  buckets = Buckets(tuple(config.data.source_buckets), tuple(config.data.target_buckets))
  gold = {
    name: {k: v for k, v in s.items() if k not in ("source", "target")} for name, s in raw.items()
  }
  return Data(src_vocab, tgt_vocab, splits, buckets, gold, languages[1])


_SIDES = ("source", "target")


def with_train_alignments(data: Data, dataset: ml_collections.ConfigDict) -> Data:
  """`data` whose training split carries its gold alignments (read into memory), for
  `train.guided_alignment`.

  Raises:
    ConfigError: the dataset has none, or they do not fit its sentences.
  """
  train = datasets.open_dataset(dataset).load(("train",))["train"]
  if "alignment" not in train:
    raise ConfigError(
      f"train.guided_alignment needs gold alignments of the training split, which "
      f"{dataset.name!r} "
      "has not; use a synthetic dataset or dataset.files.train=SRC,TGT,ALIGN (Pharaoh lines)."
    )
  aligned = data.splits["train"].with_alignments(train["alignment"], "train")
  return dataclasses.replace(data, splits={**data.splits, "train": aligned})


def _verb(built: bool) -> str:
  return "Built and cached" if built else "Read cached"


def cache_dir(dataset: ml_collections.ConfigDict) -> str:
  """`dataset.cache_dir`, or by default `token_cache` in the TFDS data directory."""
  return dataset.cache_dir or os.path.join(
    datasets.resolve_data_dir(dataset.data_dir), "token_cache"
  )
