"""Test setup: CPU with 8 simulated devices, configured before jax is imported."""

import os

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="session")
def dates_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding the dates dataset, built once per test session."""
  from attn_research.data import datasets

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  datasets.load("dates", data_dir)
  return data_dir
