"""`validate`: every experiment config key's constraint in one table, checked before any
data is built or any model initialised.

`CONSTRAINTS` maps each leaf key of the experiment config (`experiments/configs/base.py`)
to what its value must be: its type, its range with the bounds' inclusivity (floats also
finite), a registry name, or a shape. The keys of `model.encoder`, `model.decoder` and
`model.attention` come from the fields of the sub-configs that own them. A config must
hold exactly these keys. The architecture's cross-key checks (`ModelConfig.validate` and
what it calls) run after the table. Every error is a one-line `ConfigError` naming the
key, the bad value and what would be valid.
"""

import dataclasses
from collections.abc import Iterator

import ml_collections

from attn_research import constraints, runs
from attn_research.attention import AttentionConfig
from attn_research.constraints import (
  NON_NEGATIVE,
  POSITIVE,
  BatchSize,
  Bool,
  Choice,
  Constraint,
  DataDir,
  Float,
  Int,
  Languages,
  Lengths,
  OptionalFile,
  Splits,
)
from attn_research.data import datasets
from attn_research.data.datasets import text
from attn_research.data.pipeline import Buckets, batch_rows
from attn_research.data.tokenizers import TOKENIZERS
from attn_research.errors import ConfigError
from attn_research.model import BRIDGES, DECODERS, DecoderConfig, EncoderConfig, ModelConfig
from attn_research.training.losses import GUIDED_ALIGNMENT_LOSSES
from attn_research.training.optimizers import OPTIMIZERS, SCHEDULES
from attn_research.training.precision import DTYPES


def _dataset_names() -> Iterator[str]:
  """`family` or `family/config` of every dataset, as `python -m experiments.variants`."""
  for family in datasets.DATASETS.names():
    for config in datasets.DATASETS.get(family).configs or ("",):
      yield f"{family}/{config}" if config else family


@dataclasses.dataclass(frozen=True)
class DatasetName(Constraint):
  def check(self, value, num_devices):
    if isinstance(value, str):
      try:
        datasets.parse_name(value)
        return None
      except ConfigError:
        pass
    return self.problem(f"must be one of {', '.join(_dataset_names())}")


@dataclasses.dataclass(frozen=True)
class CorpusFiles(Constraint):
  """ "" or a text split's existing `TSV`, `SRC,TGT` or `SRC,TGT,ALIGN` files."""

  def check(self, value, num_devices):
    if not isinstance(value, str):
      return self.problem("must be a string of comma-separated paths")
    problem = text.check_files(value)
    return self.problem(problem) if problem else None


CONSTRAINTS: dict[str, Constraint] = {
  # jax.random.key keeps 32 bits of a seed; the data plan's NumPy seeds must be ≥ 0.
  "seed": Int(low=0, high=2**32 - 1),
  "dataset.name": DatasetName(),
  "dataset.data_dir": DataDir(),
  "dataset.vocab": Choice(names=TOKENIZERS),
  "dataset.vocab_size": NON_NEGATIVE,
  "dataset.vocab_sentences": Int(low=0, note="0: every sentence"),
  "dataset.cache_dir": DataDir(),
  "dataset.languages": Languages(),
  **{f"dataset.files.{split}": CorpusFiles() for split in text.SPLITS},
  "data.source_buckets": Lengths(),
  "data.target_buckets": Lengths(),
  "data.max_train_words": Int(low=0, note="0: no limit"),
  "model.embedding_size": POSITIVE,
  "model.dropout": Float(low=0, high=1, high_open=True),
  "model.bridge": Choice(names=BRIDGES),
  **constraints.of(EncoderConfig, "model.encoder."),
  **constraints.of(DecoderConfig, "model.decoder."),
  **constraints.of(AttentionConfig, "model.attention."),
  "train.num_steps": POSITIVE,
  "train.batch_size": BatchSize(),
  "train.accumulate_steps": POSITIVE,
  "train.batch_tokens": Int(low=0, note="0: batch_size rows"),
  "train.optimizer": Choice(names=OPTIMIZERS),
  "train.learning_rate": Float(low=0, low_open=True),
  "train.schedule": Choice(names=SCHEDULES),
  "train.warmup_steps": NON_NEGATIVE,
  "train.grad_clip": Float(low=0, note="0: no clipping"),
  "train.label_smoothing": Float(low=0, high=1, high_open=True),
  "train.coverage_loss": Float(low=0, note="0: none"),
  "train.coverage_loss_start": NON_NEGATIVE,
  "train.guided_alignment": Float(low=0, note="0: none"),
  "train.guided_alignment_loss": Choice(names=GUIDED_ALIGNMENT_LOSSES),
  "train.dtype": Choice(names=DTYPES),
  "train.log_every": POSITIVE,
  "train.eval_every": POSITIVE,
  "train.checkpoint_every": POSITIVE,
  "train.keep_checkpoints": POSITIVE,
  "eval.batch_size": BatchSize(),
  # The validation split picks the best checkpoint.
  "eval.splits": Splits(),
  "eval.length_bin": POSITIVE,
  "eval.num_heatmaps": NON_NEGATIVE,
  "decode.beam_size": Int(low=0, note="0: greedy"),
  "decode.length_penalty": Float(low=0),
  "decode.coverage_penalty": Float(low=0),
  "decode.max_length_a": Float(low=0),
  "decode.max_length_b": NON_NEGATIVE,
  "decode.unk_replace": Bool(),
  "decode.unk_dictionary": OptionalFile(note="'': none"),
}


def validate(
  config: ml_collections.ConfigDict, num_devices: int, only: tuple[str, ...] = ()
) -> None:
  """Raises a one-line `ConfigError` for the first key whose value cannot run.

  Args:
    config: an experiment config.
    num_devices: devices the batches are split over.
    only: check just the keys starting with these prefixes (say, the `decode.` overrides
      of a run that trained), none of the checks across keys.
  """
  flat = runs.flatten(config)
  if only:
    for key, constraint in CONSTRAINTS.items():
      if key.startswith(only) and (problem := constraint.check(flat[key], num_devices)):
        raise ConfigError(f"{key}={flat[key]!r} {problem}")
    return
  for key, constraint in CONSTRAINTS.items():
    if key not in flat:
      raise ConfigError(f"{key} is missing; experiments/configs/base.py lists every key.")
    problem = constraint.check(flat[key], num_devices)
    if problem is not None:
      raise ConfigError(f"{key}={flat[key]!r} {problem}")
  for key, value in flat.items():
    if key not in CONSTRAINTS:
      raise ConfigError(
        f"{key}={value!r} is not a config key; remove it, or add it to "
        "attn_research/config_checks.py's CONSTRAINTS."
      )
  datasets.check_files(config.dataset.name, config.dataset.files, config.eval.splits)
  if config.train.batch_tokens:  # a budget too small for the largest shape
    buckets = Buckets(tuple(config.data.source_buckets), tuple(config.data.target_buckets))
    last = (len(buckets.source) - 1, len(buckets.target) - 1)
    batch_rows(buckets, *last, config.train.batch_size, config.train.batch_tokens, num_devices)
  if not DECODERS.get(config.model.decoder.type).attentional:
    for key in ("train.coverage_loss", "train.guided_alignment"):
      if flat[key]:
        raise ConfigError(
          f"{key}={flat[key]!r} is a loss on attention weights, which "
          f"model.decoder.type={config.model.decoder.type!r} has not; set it to 0 or use an "
          "attentional decoder (luong, bahdanau, gnmt)."
        )
  # No structural check reads the vocabulary sizes, which need the data.
  ModelConfig.from_config(
    config.model, src_vocab_size=0, tgt_vocab_size=0, longest_source=config.data.source_buckets[-1]
  ).validate()
