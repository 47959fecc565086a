"""A run's dataset: built or loaded once, encoded with the run's vocabularies."""

import dataclasses

import ml_collections

from attn_research import runs
from attn_research.data import datasets
from attn_research.data.pipeline import Buckets, EncodedSplit
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


def prepare_data(config: ml_collections.ConfigDict, run: runs.Workdir) -> Data:
  """Builds/loads the dataset; the vocabularies come from the run if it has them, else
  they are built from the training split and stored in the run."""
  raw = datasets.load(config.dataset.name, config.dataset.data_dir, config.dataset.files)
  for split in ("train", *config.eval.splits):
    if split not in raw:
      raise ConfigError(
        f"Dataset {config.dataset.name!r} has no {split} split (it has {', '.join(raw)}); "
        "fix eval.splits."
      )
  languages = datasets.languages(config.dataset.name, config.dataset.languages)
  vocabs = []
  for (filename, feature), lang in zip(
    ((runs.SOURCE_VOCAB, "source"), (runs.TARGET_VOCAB, "target")), languages, strict=True
  ):
    if run.exists(filename):
      vocabs.append(Vocabulary.from_json(run.read_text(filename)))
    else:
      vocab = Vocabulary.build(
        raw["train"][feature], config.dataset.vocab, config.dataset.vocab_size, lang=lang
      )
      run.write_text(filename, vocab.to_json())
      vocabs.append(vocab)
  src_vocab, tgt_vocab = vocabs
  splits = {
    name: EncodedSplit.from_texts(s["source"], s["target"], src_vocab, tgt_vocab)
    for name, s in raw.items()
  }
  buckets = Buckets(tuple(config.data.source_buckets), tuple(config.data.target_buckets))
  gold = {
    name: {k: v for k, v in s.items() if k not in ("source", "target")} for name, s in raw.items()
  }
  return Data(src_vocab, tgt_vocab, splits, buckets, gold, languages[1])
