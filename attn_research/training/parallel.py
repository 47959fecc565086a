"""Data parallelism with `jax.jit` over a one-axis `('data',)` device mesh.

Parameters and optimizer state are replicated, batches are split along their first axis,
and XLA inserts the gradient all-reduce: the current JAX way to do what `pmap` did.
"""

import functools
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from attn_research.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process)."""
  return Mesh(np.array(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, key: str) -> None:
  if batch_size % mesh.size:
    raise ConfigError(
      f"{key}={batch_size} must be divisible by the number of devices ({mesh.size}); "
      f"use a multiple of {mesh.size}."
    )


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Global host batch → arrays split over the mesh's `data` axis.

  Every process holds the same global batch (the data plan is deterministic) and transfers
  to its own devices just the rows they hold. Passing the whole batch with its global shape
  lets JAX pick those rows from the sharding, so no order of devices across processes is
  assumed.
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v, v.shape) for k, v in batch.items()}


@functools.cache  # read once per mesh, not per batch
def process_devices(mesh: Mesh) -> tuple[int, int]:
  """(first, stop): the run of the mesh's devices that belong to this process, whose rows
  of every batch it alone feeds.

  Raises:
    ValueError: if this process's devices are not contiguous in the mesh.
  """
  positions = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
  first, stop = positions[0], positions[-1] + 1
  if positions != list(range(first, stop)):
    raise ValueError(f"Process {jax.process_index()}'s devices are not contiguous in the mesh.")
  return first, stop


def shard_local_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows of a global batch (those of its `process_devices`) → the global
  arrays split over the mesh's `data` axis."""
  first, stop = process_devices(mesh)
  sharding = batch_sharding(mesh)
  return {
    k: jax.make_array_from_process_local_data(
      sharding, v, (len(v) * mesh.size // (stop - first), *v.shape[1:])
    )
    for k, v in batch.items()
  }
