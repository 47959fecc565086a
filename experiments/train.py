r"""Trains and evaluates one experiment.

  python -m experiments.train --config=experiments/configs/dates.py --workdir=runs/dates \
      [--config.model.attention.score=dot ...] [--overwrite]

Writes config.json, metrics.jsonl, checkpoints/ and result.json to --workdir; running the
same command again resumes from the latest checkpoint. Prints the final metrics as JSON.

One process at a time trains a workdir: a second one exits with status 76 (`runs.EXIT_HELD`)
and a line naming the holder. SIGTERM or SIGUSR1 stops the run after its current step with
a checkpoint there; it then exits with status 75 (`runs.EXIT_PREEMPTED`): rerun to resume.

Several processes (hosts) train one run when started with the same command plus
--coordinator_address=HOST:PORT (of process 0) --num_processes=N --process_id=I, or as the
tasks of one Slurm step (`srun`), which JAX detects. Only process 0 writes and prints.
`--config.train.deterministic=True` asks XLA for deterministic GPU kernels first.
"""

import json
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config file, e.g. experiments/configs/dates.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created if missing).")
_OVERWRITE = flags.DEFINE_bool(
  "overwrite", False, "Delete a previous run with a different config in --workdir."
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "host:port of process 0, for a run over several processes."
)
_NUM_PROCESSES = flags.DEFINE_integer(
  "num_processes", None, "Processes of the run (default: 1, or the tasks of a Slurm step)."
)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 … N−1.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if _CONFIG.value.train.get("deterministic"):
    cli.deterministic_gpu_ops()  # before the backend starts
  import jax  # after absl parsed the flags

  from attn_research import run_lock, runs
  from attn_research.training import distributed

  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  from attn_research.training import trainer  # after jax.distributed, before any jax use

  try:
    result = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)
  except run_lock.WorkdirHeldError as e:
    cli.fail(e, status=runs.EXIT_HELD)
  if result["status"] == runs.PREEMPTED:
    sys.exit(runs.EXIT_PREEMPTED)  # the trainer said why in its last line
  if jax.process_index() != 0:
    return
  if result["status"] == runs.DIVERGED:
    cli.fail(f"the run diverged: {result['error']}", status=1)
  summary = {
    "workdir": _WORKDIR.value,
    "num_params": result["num_params"],
    "wall_seconds": round(result["wall_seconds"], 1),
    "compile_seconds": round(result.get("compile_seconds", 0.0), 1),
    "train_tokens_per_second": round(result["train_tokens_per_second"] or 0.0, 1),
    "metrics": {  # bins of BLEU by length are in result.json and its plot
      split: {k: v for k, v in m.items() if k != "bleu_by_length"}
      for split, m in result["metrics"].items()
    },
  }
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  cli.run(main)
