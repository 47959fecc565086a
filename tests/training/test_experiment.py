"""The config validation table: every key has a constraint, and each bad value fails
with one line naming the key, the value and what is valid."""

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from attn_research.config import fields
from attn_research.config import overrides as config_overrides
from attn_research.errors import ConfigError
from attn_research.training import experiment, optimizers
from experiments.configs import base, dates, debian_l10n, synthetic
from tests.conftest import REPO

# Experiment configs: each must validate, and each of their keys must have a constraint.
CONFIGS = {
  "dates": dates.get_config,
  "synthetic": synthetic.get_config,
  "debian_l10n": debian_l10n.get_config,
}


def _with(overrides: dict[str, Any], config=None) -> ml_collections.ConfigDict:
  """The dates config with dotted-key overrides, rebuilt from a plain dict so that any
  type can be set."""
  tree = (config or dates.get_config()).to_dict()
  for key, value in overrides.items():
    *sections, name = key.split(".")
    node = tree
    for section in sections:
      node = node[section]
    node[name] = value
  return ml_collections.ConfigDict(tree)


def _error(config, num_devices=8) -> str:
  with pytest.raises(ConfigError) as error:
    experiment.validate(config, num_devices)
  message = str(error.value)
  assert "\n" not in message
  return message


@pytest.mark.parametrize("name", [*CONFIGS, "base"])
def test_every_key_has_a_constraint(name):
  config = base.get_config() if name == "base" else CONFIGS[name]()
  keys = set(config_overrides.flatten(config))
  assert keys == set(fields.constraints(experiment.Experiment))


@pytest.mark.parametrize("num_devices", [1, 8])
@pytest.mark.parametrize("name", CONFIGS)
def test_experiment_configs_validate(name, num_devices):
  experiment.validate(CONFIGS[name](), num_devices)


BAD_VALUES = [
  ("train.accumulate_steps", 0, "must be an int ≥ 1"),
  ("train.batch_tokens", -1, "must be an int ≥ 0 (0: batch_size rows)"),
  ("seed", -1, "must be an int in [0, 4294967295]"),
  ("seed", 2**32, "in [0, 4294967295]"),
  ("seed", 1.5, "must be an int"),
  ("seed", "0", "must be an int"),
  ("dataset.name", "nope", "must be one of dates, synthetic/copy"),
  ("dataset.name", "synthetic/nope", "synthetic/reverse"),
  ("dataset.name", "dates/en-de", "must be one of dates,"),
  ("dataset.vocab", "bytes", "must be one of char, word"),
  ("dataset.vocab_size", -1, "must be an int ≥ 0"),
  ("data.source_buckets", (), "non-empty, strictly increasing"),
  ("data.source_buckets", (20, 10), "strictly increasing"),
  ("data.source_buckets", (10, 10), "strictly increasing"),
  ("data.target_buckets", (0, 12), "ints ≥ 1"),
  ("data.target_buckets", (12.0,), "ints ≥ 1"),
  ("data.max_train_words", -1, "must be an int ≥ 0 (0: no limit)"),
  ("model.embedding_size", 0, "must be an int ≥ 1"),
  ("model.embedding_size", True, "must be an int ≥ 1"),
  ("model.dropout", 1.0, "must be a finite number in [0, 1)"),
  ("model.dropout", -0.1, "in [0, 1)"),
  ("model.bridge", "copy", "must be one of zero, last, dense"),
  ("model.encoder.type", "transformer", "must be one of uni, bi, gnmt"),
  ("model.encoder.cell", "rnn", "must be one of lstm, gru"),
  ("model.encoder.num_layers", 0, "must be an int ≥ 1"),
  ("model.encoder.hidden_size", -4, "must be an int ≥ 1"),
  ("model.encoder.residual", "yes", "must be True or False"),
  ("model.decoder.type", "transformer", "must be one of luong, bahdanau, gnmt"),
  ("model.decoder.num_layers", 0, "must be an int ≥ 1"),
  ("model.decoder.tie_embeddings", 1, "must be True or False"),
  ("model.decoder.maxout_size", -1, "(0: hidden_size // 2)"),
  ("model.attention.score", "nope", "must be one of dot, scaled_dot, general"),
  ("model.attention.alignment", "local", "must be one of global, local_m, local_p"),
  ("model.attention.window", -1, "must be an int ≥ 0"),
  ("model.attention.size", -1, "must be an int ≥ 0"),
  ("model.attention.init", "xavier", "must be one of paper, default"),
  ("model.attention.max_source_length", -5, "(0: the largest source bucket)"),
  ("train.num_steps", 0, "must be an int ≥ 1"),
  ("train.batch_size", 0, "must be an int ≥ 1"),
  ("train.batch_size", 100, "must be divisible by the number of devices (8); use a multiple of 8"),
  ("train.optimizer", "rmsprop", "must be one of adam, sgd, adadelta, adagrad"),
  ("train.adadelta_rho", 1.0, "must be a finite number in (0, 1)"),
  ("train.adagrad_init", -0.1, "must be a finite number ≥ 0"),
  ("train.num_epochs", -1.0, "must be a finite number ≥ 0 (0: num_steps)"),
  ("train.decay_factor", 1.0, "must be a finite number in (0, 1)"),
  ("train.decay_every", 0.0, "must be a finite number > 0"),
  ("train.decay_unit", "epochs", "must be one of epoch, step"),
  ("train.decay_metric", "validation.rouge", "must be one of validation.bleu,"),
  ("train.early_stopping.metric", "test.bleu", "must be one of validation.bleu,"),
  ("train.early_stopping.patience", -1, "must be an int ≥ 0"),
  ("train.scheduled_sampling", "cosine", "must be one of none, linear, exponential, "),
  ("train.sampling_min", 1.5, "must be a finite number in [0, 1]"),
  ("train.learning_rate", math.nan, "must be a finite number > 0"),
  ("train.learning_rate", math.inf, "must be a finite number > 0"),
  ("train.learning_rate", -1.0, "must be a finite number > 0"),
  ("train.learning_rate", 0.0, "must be a finite number > 0"),
  ("train.learning_rate", "1e-3", "must be a finite number > 0"),
  ("train.schedule", "linear", "must be one of constant, cosine, halving, plateau"),
  ("train.warmup_steps", -1, "must be an int ≥ 0"),
  ("train.grad_clip", -1.0, "must be a finite number ≥ 0 (0: no clipping)"),
  ("train.grad_clip", math.inf, "must be a finite number ≥ 0"),
  ("train.label_smoothing", 1.0, "must be a finite number in [0, 1)"),
  ("train.label_smoothing", -0.1, "in [0, 1)"),
  ("train.coverage_loss", -1.0, "must be a finite number ≥ 0 (0: none)"),
  ("train.coverage_loss_start", -1, "must be an int ≥ 0"),
  ("model.attention.heads", 0, "must be an int ≥ 1"),
  ("model.attention.coverage", "count", "must be one of none, see, tu_linguistic, tu_nn"),
  ("model.attention.coverage_size", 0, "must be an int ≥ 1"),
  ("train.log_every", 0, "must be an int ≥ 1"),
  ("train.keep_checkpoints", 0, "must be an int ≥ 1"),
  ("eval.batch_size", 12, "must be divisible by the number of devices (8)"),
  ("eval.splits", (), "including 'validation'"),
  ("eval.splits", ("test",), "including 'validation'"),
  ("eval.splits", ("validation", "validation"), "distinct split names"),
  ("eval.length_bin", 0, "must be an int ≥ 1"),
  ("eval.num_heatmaps", -1, "must be an int ≥ 0"),
  ("decode.beam_size", -1, "must be an int ≥ 0 (0: greedy)"),
  ("decode.length_penalty", -0.5, "must be a finite number ≥ 0"),
  ("decode.coverage_penalty", math.nan, "must be a finite number ≥ 0"),
  ("decode.max_length_a", -1.0, "must be a finite number ≥ 0"),
  ("decode.max_length_b", -1, "must be an int ≥ 0"),
  ("decode.unk_replace", "no", "must be True or False"),
  ("decode.unk_dictionary", "/nonexistent/dictionary.tsv", "must be an existing file"),
]


@pytest.mark.parametrize("key,value,fragment", BAD_VALUES)
def test_bad_value_names_key_value_and_what_is_valid(key, value, fragment):
  message = _error(_with({key: value}))
  assert message.startswith(f"{key}={value!r} ")
  assert fragment in message


STRUCTURAL = [
  (
    {"model.encoder.type": "bi", "model.encoder.hidden_size": 255},
    "model.encoder.hidden_size=255 is odd, but model.encoder.type='bi' splits it",
  ),
  ({"model.encoder.type": "gnmt", "model.encoder.hidden_size": 33}, "choose an even size"),
  (
    {"model.decoder.tie_embeddings": True},  # hidden 256, embedding 64
    "model.decoder.tie_embeddings needs the output layer's input size (256: ",
  ),
  (  # Bahdanau's maxout layer has hidden_size // 2 = 128 units
    {
      "model.decoder.type": "bahdanau",
      "model.decoder.tie_embeddings": True,
      "model.embedding_size": 256,
    },
    "set model.embedding_size=128",
  ),
  (
    {"model.bridge": "last", "model.encoder.num_layers": 2, "model.decoder.num_layers": 1},
    "encoder 2, decoder 1. Set model.decoder.num_layers equal to model.encoder.num_layers",
  ),
  (
    {"model.attention.score": "location", "model.attention.max_source_length": 30},
    "model.attention.max_source_length=30 is shorter than the largest source bucket (40)",
  ),
  (
    {"model.attention.heads": 3},
    "model.attention.heads=3 must divide model.encoder.hidden_size (256); choose heads among",
  ),
  (
    {"model.attention.coverage": "see"},  # the dates config's score is general
    "model.attention.coverage='see' enters the score inside its tanh layer, which "
    "model.attention.score='general' has not; use a score among concat, additive, ",
  ),
  (
    {"train.scheduled_sampling": "exponential"},  # k = 100 by default
    "train.sampling_k=100.0 must be < 1 (ε = k^step) for train.scheduled_sampling='exponential'",
  ),
  (
    {"train.scheduled_sampling": "inverse_sigmoid", "train.sampling_k": 0.5},
    "train.sampling_k=0.5 must be ≥ 1 (ε = k / (k + exp(step / k)))",
  ),
  (
    {"train.early_stopping.patience": 2, "train.schedule": "plateau", "train.eval_every": 5000},
    "train.schedule='plateau' and train.early_stopping.patience=2 act on validations during "
    "training, but train.eval_every=5000 ≥ train.num_steps=",
  ),
  (  # 8 devices × the 40-token largest bucket
    {"train.batch_tokens": 300},
    "train.batch_tokens=300 holds no batch of 8 rows of 40 tokens; raise it to at least 320",
  ),
]


@pytest.mark.parametrize("overrides,fragment", STRUCTURAL)
def test_architecture_that_cannot_be_built(overrides, fragment):
  assert fragment in _error(_with(overrides))


@pytest.mark.parametrize(
  "overrides",
  [
    {"model.encoder.type": "uni", "model.encoder.hidden_size": 255},
    {"model.decoder.tie_embeddings": True, "model.embedding_size": 256},
    {
      "model.decoder.type": "bahdanau",
      "model.decoder.tie_embeddings": True,
      "model.decoder.maxout_size": 64,
    },
    {"model.bridge": "dense", "model.encoder.num_layers": 2, "model.decoder.num_layers": 1},
    {"model.attention.score": "location", "model.attention.max_source_length": 40},
    {"train.grad_clip": 0.0, "decode.beam_size": 0, "train.warmup_steps": 0},
    {"train.early_stopping.patience": 3, "train.eval_every": 100, "train.num_epochs": 2.5},
    {"train.scheduled_sampling": "exponential", "train.sampling_k": 0.999},
    {"model.attention.heads": 8, "model.attention.score": "scaled_dot"},
    {
      "model.attention.score": "normed_additive",
      "model.attention.coverage": "tu_nn",
      "train.coverage_loss": 1.0,
    },
  ],
)
def test_architectures_and_values_that_can_run(overrides):
  experiment.validate(_with(overrides), 8)


def test_missing_keys_read_as_defaults_and_unknown_keys_fail():
  tree = dates.get_config().to_dict()
  del tree["train"]["grad_clip"], tree["model"]["attention"]
  experiment.validate(ml_collections.ConfigDict(tree), 8)  # a stored config's older keys
  typed = fields.parse(experiment.Experiment, tree)
  assert typed.train.grad_clip == 5.0 and typed.model.attention.score == "general"
  tree = dates.get_config().to_dict()
  tree["train"]["gradclip"] = 1.0
  message = _error(ml_collections.ConfigDict(tree))
  assert message == (
    "train.gradclip=1.0 is not a config key; remove it, or declare it as a field of "
    "attn_research.training.experiment.TrainConfig."
  )


def test_data_dir_that_cannot_be_created(tmp_path):
  file = tmp_path / "file"
  file.write_text("")
  message = _error(_with({"dataset.data_dir": str(file / "tfds")}))
  assert message == (
    f"dataset.data_dir={str(file / 'tfds')!r} cannot be created: {file} is a file."
  )
  assert "is a file, not a directory" in _error(_with({"dataset.data_dir": str(file)}))
  if os.geteuid() != 0:  # root may write anywhere
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    message = _error(_with({"dataset.data_dir": str(locked / "a" / "b")}))
    assert f"cannot be created: {locked} is not writable" in message


def test_data_dir_is_checked_without_creating_it(tmp_path):
  for data_dir in ("", str(tmp_path), str(tmp_path / "new" / "tfds")):
    experiment.validate(_with({"dataset.data_dir": data_dir}), 8)
  assert not (tmp_path / "new").exists()


def test_grad_clip_zero_is_no_clipping():
  train = _with({"train.optimizer": "sgd", "train.schedule": "constant", "train.warmup_steps": 0})
  params = {"w": jnp.zeros(3)}
  grads = {"w": jnp.full(3, 10.0)}
  states = {}
  for clip in (0.0, 5.0):
    train.train.grad_clip = clip
    tx = optimizers.make_optimizer(train.train, optimizers.StepPlan(10, 1.0))
    states[clip] = tx.init(params)
    updates, _ = tx.update(grads, states[clip], params)
    norm = float(jnp.linalg.norm(updates["w"])) / train.train.learning_rate
    assert norm == pytest.approx(clip or float(jnp.linalg.norm(grads["w"])), rel=1e-5)
  # A checkpoint restores whether or not gradients are clipped.
  assert jax.tree.structure(states[0.0]) == jax.tree.structure(states[5.0])


def test_key_reference_is_generated_from_the_fields():
  with open(os.path.join(REPO, "docs", "config.md"), encoding="utf-8") as f:
    assert f.read() == experiment.reference(), (
      "run: python -m experiments.keys --output=docs/config.md"
    )
  reference = experiment.reference()
  assert (
    "| `model.attention.window` | `10` | an int ≥ 0 | D of local alignments (Luong: 10) |"
    in reference
  )
  assert reference.count("\n| `") == len(fields.keys(experiment.Experiment))


def test_base_config_holds_luongs_defaults():
  config = base.get_config()
  assert (config.model.attention.score, config.model.attention.alignment) == ("general", "global")
  assert config.model.attention.window == 10 and config.model.decoder.input_feeding
  assert config.model.attention.expectation == "recursive"
  assert config.train.grad_clip == 5.0 and config.data.target_buckets == (17, 33, 65)
  typed = fields.parse(experiment.Experiment, dates.get_config())
  assert typed.model == experiment.Experiment().model  # dates keeps the default model
  assert typed.dataset.name == "dates" and typed.data.target_buckets == (12,)
