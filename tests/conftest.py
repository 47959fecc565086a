"""Test setup: CPU with 8 simulated devices, configured before jax is imported."""

import os
import subprocess
import sys

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_enable_x64", False)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
  """`python -m module args…` from the repository root, output captured as text."""
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )


def tiny_train_command(workdir: str, data_dir: str) -> list[str]:
  """`experiments.train` of the tiny dates config (`tests/configs/tiny_dates.py`)."""
  return [
    sys.executable,
    "-m",
    "experiments.train",
    f"--config={os.path.join(REPO, 'tests', 'configs', 'tiny_dates.py')}",
    f"--workdir={workdir}",
    f"--config.dataset.data_dir={data_dir}",
  ]


@pytest.fixture(scope="session")
def dates_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding the dates dataset, built once per test session."""
  from attn_research.data import datasets

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  datasets.load("dates", data_dir)
  return data_dir


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding small `synthetic/copy` and `synthetic/reverse` datasets."""
  from attn_research.data import datasets
  from attn_research.data.datasets import synthetic

  data_dir = str(tmp_path_factory.mktemp("tfds_synthetic"))
  sizes = {"train": 2000, "validation": 64, "test": 64, "test_long": 64}
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(synthetic, "SPLIT_SIZES", sizes)
    for task in ("copy", "reverse"):
      datasets.load(f"synthetic/{task}", data_dir)
  return data_dir


def tiny_config(data_dir: str, **train):
  """The tiny dates config reading `data_dir`, with `train.*` overrides."""
  from tests.configs import tiny_dates

  config = tiny_dates.get_config()
  config.dataset.data_dir = data_dir
  for key, value in train.items():
    setattr(config.train, key, value)
  return config


@pytest.fixture(scope="session")
def tiny_run(dates_data_dir, tmp_path_factory):
  """A finished 300-step run of the tiny dates config: (workdir, result)."""
  from attn_research.training import trainer

  workdir = str(tmp_path_factory.mktemp("tiny"))
  return workdir, trainer.train_and_evaluate(tiny_config(dates_data_dir), workdir)


def tiny_seq2seq(**overrides):
  """A small `Seq2Seq` for model and decoding tests; `overrides` are `ModelConfig` fields."""
  from attn_research.model import ModelConfig, Seq2Seq

  config = dict(
    src_vocab_size=23,
    tgt_vocab_size=17,
    embedding_size=8,
    dropout=0.0,
    encoder_type="bi",
    encoder_cell="lstm",
    encoder_layers=2,
    hidden_size=12,
    decoder_type="luong",
    decoder_layers=2,
    input_feeding=False,
    score="general",
    alignment="global",
    window=2,
  )
  config.update(overrides)
  return Seq2Seq(ModelConfig(**config))
