"""The experiment config: the `train` section and the sections of everything a run builds.

Each section is declared once, by the module that reads it (`fields` explains how);
`Experiment` gathers them. From it come `experiments/configs/base.py`'s defaults, the
checks every config passes before any data is built (`validate`) and the completion of a
stored config that predates a key (`complete`: the key reads as its default).
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from attn_research import runs
from attn_research.config import fields
from attn_research.config.fields import (
  NON_NEGATIVE,
  POSITIVE,
  BatchSize,
  Bool,
  Choice,
  Float,
  Int,
  field,
  section,
)
from attn_research.config.overrides import flatten
from attn_research.data.datasets import DatasetConfig, open_dataset
from attn_research.data.pipeline import DataConfig, batch_rows
from attn_research.decoding.config import DecodeConfig
from attn_research.errors import ConfigError
from attn_research.model import DECODERS, ModelConfig
from attn_research.training import sampling, watch
from attn_research.training.evaluator import EvalConfig
from attn_research.training.losses import GUIDED_ALIGNMENT_LOSSES
from attn_research.training.optimizers import OPTIMIZERS, SCHEDULES
from attn_research.training.precision import DTYPES
from attn_research.training.trackers import TrackingConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """`train`: the optimizer, its schedule, the batches, the losses and the loop's clock."""

  num_steps: int = field(POSITIVE, 1000, "optimizer steps (unless num_epochs is set)")
  num_epochs: float = field(
    Float(low=0, note="0: num_steps"),
    0.0,
    "> 0: train this many passes over the training batches instead of num_steps (rounded "
    "up to a whole step)",
  )
  batch_size: int = field(BatchSize(), 128, "sentence pairs per batch")
  accumulate_steps: int = field(
    POSITIVE,
    1,
    "batches whose gradients add up to one optimizer step (OpenNMT-py's accum_count)",
  )
  batch_tokens: int = field(
    Int(low=0, note="0: batch_size rows"),
    0,
    "> 0: a token budget per batch instead of batch_size rows: each bucket shape takes the "
    "most rows whose padded max(S, T) tokens fit, a multiple of the devices",
  )
  optimizer: str = field(Choice(names=OPTIMIZERS), "adam", "adam | sgd | adadelta | adagrad")
  adadelta_rho: float = field(
    Float(low=0, high=1, low_open=True, high_open=True), 0.95, "Adadelta's ρ (Bahdanau: 0.95)"
  )
  adadelta_eps: float = field(Float(low=0, low_open=True), 1e-6, "Adadelta's ε (Bahdanau: 1e-6)")
  adagrad_init: float = field(
    Float(low=0), 0.1, "Adagrad's initial accumulator value (See et al.: 0.1)"
  )
  learning_rate: float = field(Float(low=0, low_open=True), 3e-3, "peak learning rate")
  schedule: str = field(
    Choice(names=SCHEDULES), "cosine", "constant | cosine | halving | plateau (after warm-up)"
  )
  warmup_steps: int = field(NON_NEGATIVE, 100, "linear warm-up steps")
  decay_factor: float = field(
    Float(low=0, high=1, low_open=True, high_open=True),
    0.5,
    "halving, plateau: what each decay multiplies the learning rate by",
  )
  decay_start: float = field(
    Float(low=0), 5.0, "halving: when the first decay happens, in decay_units (Luong: 5 epochs)"
  )
  decay_every: float = field(
    Float(low=0, low_open=True), 1.0, "halving: decay_units between decays (Luong: 1 epoch)"
  )
  decay_unit: str = field(
    Choice(names=("epoch", "step")), "epoch", "halving: the unit of decay_start and decay_every"
  )
  decay_metric: str = field(
    Choice(names=watch.METRICS), "validation.ppl", "plateau: the validation metric watched"
  )
  decay_patience: int = field(
    POSITIVE, 1, "plateau: decay after this many validations in a row without improvement"
  )
  decay_min_delta: float = field(
    Float(low=0), 0.0, "plateau: an improvement beats the best by more than this"
  )
  early_stopping: watch.EarlyStoppingConfig = section(
    watch.EarlyStoppingConfig, "stop when a validation metric stops improving"
  )
  grad_clip: float = field(
    Float(low=0, note="0: no clipping"),
    5.0,
    "global-norm clipping (Luong: rescale when the norm > 5); 0 = off",
  )
  label_smoothing: float = field(Float(low=0, high=1, high_open=True), 0.0, "label smoothing ε")
  coverage_loss: float = field(
    Float(low=0, note="0: none"),
    0.0,
    "λ of See 2017's coverage loss Σ_t Σ_j min(a_tj, Σ_{t'<t} a_t'j), per target token",
  )
  coverage_loss_start: int = field(
    NON_NEGATIVE, 0, "the step from which the coverage loss counts (See et al.: a last phase)"
  )
  guided_alignment: float = field(
    Float(low=0, note="0: none"),
    0.0,
    "λ of a loss pulling the attention towards the training split's gold alignments",
  )
  guided_alignment_loss: str = field(
    Choice(names=GUIDED_ALIGNMENT_LOSSES), "ce", "ce | mse, per target token"
  )
  scheduled_sampling: str = field(
    Choice(names=sampling.DECAYS),
    "none",
    "none | linear | exponential | inverse_sigmoid: Bengio et al. 2015's decay of ε, the "
    "probability of feeding the gold previous token instead of the model's own argmax",
  )
  sampling_k: float = field(
    Float(low=0, low_open=True),
    100.0,
    "k of the decay: linear's start, exponential's base (< 1), inverse_sigmoid's (≥ 1)",
  )
  sampling_c: float = field(Float(low=0), 1e-3, "linear: ε's decrease per step")
  sampling_min: float = field(Float(low=0, high=1), 0.0, "linear: the floor of ε")
  dtype: str = field(
    Choice(names=DTYPES), "float32", "float32 | bfloat16 computation (parameters stay float32)"
  )
  deterministic: bool = field(
    Bool(),
    False,
    "GPU: XLA's deterministic kernels, so that reruns match bit for bit (set by "
    "experiments.train before jax starts; CPU runs are deterministic already)",
  )
  log_every: int = field(POSITIVE, 100, "steps between logged training metrics")
  eval_every: int = field(POSITIVE, 250, "steps between validations")
  checkpoint_every: int = field(POSITIVE, 250, "steps between checkpoints")
  keep_checkpoints: int = field(POSITIVE, 2, "latest checkpoints kept")


@dataclasses.dataclass(frozen=True)
class Experiment:
  """An experiment config: every key a run reads."""

  # jax.random.key keeps 32 bits of a seed; the data plan's NumPy seeds must be ≥ 0.
  seed: int = field(Int(low=0, high=2**32 - 1), 0, "parameters, dropout and data order")
  dataset: DatasetConfig = section(DatasetConfig, "which data")
  data: DataConfig = section(DataConfig, "padded shapes and the training length filter")
  model: ModelConfig = section(ModelConfig, "the architecture")
  train: TrainConfig = section(TrainConfig, "how it trains")
  eval: EvalConfig = section(EvalConfig, "what the final evaluation reports")
  decode: DecodeConfig = section(DecodeConfig, "how it decodes")
  tracking: TrackingConfig = section(TrackingConfig, "optional trackers mirroring the metrics")


def defaults() -> ml_collections.ConfigDict:
  """Every key with its default: `experiments/configs/base.py`."""
  return fields.defaults(Experiment)


def complete(stored: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A config read back from JSON: its lists (buckets, splits) tuples again, and each key
  it predates at its default, which behaves as the code before the key did."""

  def merge(node: ml_collections.ConfigDict, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
      if isinstance(value, Mapping) and isinstance(node.get(key), ml_collections.ConfigDict):
        merge(node[key], value)
      else:
        with node.unlocked():  # an unknown key stays, for `validate` to name
          node[key] = tuple(value) if isinstance(value, list) else value

  config = defaults()
  merge(config, stored)
  return config


def read_stored(workdir: str) -> ml_collections.ConfigDict:
  """The config the run in `workdir` stored, `complete`d.

  Raises:
    ConfigError: `workdir` holds no run.
  """
  run = runs.Workdir(workdir, writer=False)
  if not run.exists(runs.CONFIG):
    raise ConfigError(f"{run.path} holds no run (no {runs.CONFIG}); pass the --workdir of a run.")
  return complete(run.read_json(runs.CONFIG))


def validate(
  config: ml_collections.ConfigDict, num_devices: int, only: tuple[str, ...] = ()
) -> None:
  """Raises a one-line `ConfigError` for the first key whose value cannot run, naming the
  key, the value and what would be valid; then checks across keys.

  Args:
    config: an experiment config.
    num_devices: devices the batches are split over.
    only: check just the keys starting with these prefixes (say, the `decode.` overrides
      of a run that trained), none of the checks across keys.
  """
  if only:
    flat = flatten(config)
    for key, constraint in fields.constraints(Experiment).items():
      if key.startswith(only) and (problem := constraint.check(flat[key], num_devices)):
        raise ConfigError(f"{key}={flat[key]!r} {problem}")
    return
  experiment = fields.parse(Experiment, config, num_devices=num_devices)
  open_dataset(experiment.dataset).check(experiment.eval.splits)
  train = experiment.train
  if train.batch_tokens:  # a budget too small for the largest shape
    buckets = experiment.data.buckets
    last = (len(buckets.source) - 1, len(buckets.target) - 1)
    batch_rows(buckets, *last, train.batch_size, train.batch_tokens, num_devices)
  watchers = [
    name
    for name, on in (
      ("train.schedule='plateau'", train.schedule == "plateau"),
      (
        f"train.early_stopping.patience={train.early_stopping.patience}",
        train.early_stopping.patience,
      ),
    )
    if on
  ]
  bounds = {
    "exponential": "< 1 (ε = k^step)",
    "inverse_sigmoid": "≥ 1 (ε = k / (k + exp(step / k)))",
  }
  k_ok = {"exponential": train.sampling_k < 1, "inverse_sigmoid": train.sampling_k >= 1}
  if not k_ok.get(train.scheduled_sampling, True):
    raise ConfigError(
      f"train.sampling_k={train.sampling_k!r} must be {bounds[train.scheduled_sampling]} for "
      f"train.scheduled_sampling={train.scheduled_sampling!r}; set train.sampling_k."
    )
  if watchers and not train.num_epochs and train.eval_every >= train.num_steps:
    raise ConfigError(
      f"{' and '.join(watchers)} {'act' if len(watchers) > 1 else 'acts'} on validations "
      "during training, but "
      f"train.eval_every={train.eval_every} ≥ train.num_steps={train.num_steps} validates only "
      "at the end; lower train.eval_every."
    )
  if not DECODERS.get(experiment.model.decoder.type).attentional:
    for key in ("coverage_loss", "guided_alignment"):
      if getattr(train, key):
        raise ConfigError(
          f"train.{key}={getattr(train, key)!r} is a loss on attention weights, which "
          f"model.decoder.type={experiment.model.decoder.type!r} has not; set it to 0 or use "
          "an attentional decoder (luong, bahdanau, gnmt)."
        )
  # No structural check reads the vocabulary sizes, which need the data.
  longest = experiment.data.source_buckets[-1]
  ModelConfig.from_config(config.model, 0, 0, longest).validate()


def reference() -> str:
  """Every key with its default, its valid values and its meaning, as markdown
  (`docs/config.md`, written by `python -m experiments.keys`)."""
  lines = [
    "# Config keys",
    "",
    "Every key of an experiment config, generated from the fields that declare it",
    "(`python -m experiments.keys --output=docs/config.md`). Set any of them with",
    "`--config.<key>=<value>`; a run stored before a key existed reads it as its default.",
  ]
  groups = [("Top level", Experiment, "")]
  for f in dataclasses.fields(Experiment):
    if fields.SECTION in f.metadata:
      groups.append((f"`{f.name}`: {f.metadata[fields.DOC]}", f.metadata[fields.SECTION], f.name))
  for title, cls, name in groups:
    lines += [
      "",
      f"## {title}",
      "",
      "| key | default | valid values | meaning |",
      "|---|---|---|---|",
    ]
    for key, default, valid, doc in fields.reference(cls, f"{name}." if name else ""):
      if name or "." not in key:  # the top level lists its own keys only
        valid = _cell(valid.removeprefix("must be ").rstrip("."))
        lines.append(f"| `{key}` | `{default!r}` | {valid} | {_cell(doc)} |")
  return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
  return text.replace("|", "\\|")
