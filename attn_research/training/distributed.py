"""One run over several processes (hosts, or processes on one host) via `jax.distributed`.

Every process runs the same program: it builds the same global batches, feeds the rows its
own devices hold, and computes the same metrics; only process 0 writes files (orbax
checkpoints are written jointly). On CPU the cross-process collectives are gloo, JAX's
default for `jax_cpu_collectives_implementation`.
"""

import contextlib
import os
from collections.abc import Iterator

import jax
from jax.experimental import multihost_utils

from attn_research.errors import ConfigError

# What `jax.distributed.initialize()` needs to set itself up from a Slurm step.
SLURM_VARS = (
  "SLURM_JOB_ID",
  "SLURM_STEP_NODELIST",
  "SLURM_NTASKS",
  "SLURM_PROCID",
  "SLURM_LOCALID",
)


def slurm_tasks() -> int:
  """The number of tasks of the Slurm step this process belongs to (0 outside Slurm)."""
  if not all(name in os.environ for name in SLURM_VARS):
    return 0
  return int(os.environ["SLURM_NTASKS"])


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Joins the other processes of the run when there are several; a no-op otherwise.

  Several means `num_processes` > 1, or, when it is None, a Slurm step with several tasks.
  Call it before any other use of JAX (it must precede the backends). Arguments left None
  are then detected by JAX from the cluster's environment (Slurm, Open MPI, Kubernetes).

  Returns:
    whether `jax.distributed` was initialised.
  """
  if num_processes is not None and num_processes < 1:
    raise ConfigError(f"--num_processes={num_processes} must be at least 1.")
  several = num_processes > 1 if num_processes is not None else slurm_tasks() > 1
  if not several:
    if coordinator_address is not None or process_id is not None:
      raise ConfigError(
        "--coordinator_address and --process_id need --num_processes > 1 (or a Slurm step "
        "with several tasks)."
      )
    return False
  if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
    raise ConfigError(f"--process_id={process_id} must be in [0, {num_processes - 1}].")
  if coordinator_address is not None and ":" not in coordinator_address:
    raise ConfigError(f"--coordinator_address={coordinator_address!r} must be host:port.")
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except ValueError as e:  # what JAX could not detect from the environment
    raise ConfigError(
      f"jax.distributed: {e} Pass --coordinator_address=host:port, --num_processes and "
      "--process_id."
    ) from e
  return True


@contextlib.contextmanager
def writer_first(name: str) -> Iterator[None]:
  """Runs the block on process 0 first, then on the others.

  The others then see what process 0 wrote or deleted (such as a workdir reset by
  `--overwrite`); when process 0 raised on what it read (a config conflict), they raise
  the same error rather than wait for it.
  """
  if jax.process_count() == 1:
    yield
  elif jax.process_index() == 0:
    try:
      yield
    finally:
      multihost_utils.sync_global_devices(name)
  else:
    multihost_utils.sync_global_devices(name)
    yield
