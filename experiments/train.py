r"""Trains and evaluates one experiment.

  python -m experiments.train --config=experiments/configs/dates.py --workdir=runs/dates \
      [--config.model.attention.score=dot ...] [--overwrite]

Writes config.json, metrics.jsonl, checkpoints/ and result.json to --workdir; running the
same command again resumes from the latest checkpoint. Prints the final metrics as JSON.

Several processes (hosts) train one run when started with the same command plus
--coordinator_address=HOST:PORT (of process 0) --num_processes=N --process_id=I, or as the
tasks of one Slurm step (`srun`), which JAX detects. Only process 0 writes and prints.
"""

import json
import sys

from absl import app, flags, logging
from ml_collections import config_flags

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
  import jax  # after absl parsed the flags

  from attn_research.errors import ConfigError
  from attn_research.training import distributed

  if not flags.FLAGS["verbosity"].present:  # library INFO logs (orbax) drown the progress bar
    logging.set_verbosity(logging.WARNING)

  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    from attn_research.training import trainer  # after jax.distributed, before any jax use

    result = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)
  except ConfigError as e:
    sys.exit(f"error: {e}")
  if jax.process_index() != 0:
    return
  summary = {
    "workdir": _WORKDIR.value,
    "num_params": result["num_params"],
    "wall_seconds": round(result["wall_seconds"], 1),
    "train_tokens_per_second": round(result["train_tokens_per_second"], 1),
    "metrics": {  # bins of BLEU by length are in result.json and its plot
      split: {k: v for k, v in m.items() if k != "bleu_by_length"}
      for split, m in result["metrics"].items()
    },
  }
  print(json.dumps(summary, indent=2))


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a one-line error for a config override that names no field."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}\nPass --help for the flags.")
  except (AttributeError, KeyError) as e:  # raised by ml_collections for an unknown key
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    detail = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'").replace("\n", " ")
    sys.exit(
      f"error: a config override names a key that does not exist ({detail}); "
      f"overrides given: {' '.join(overrides)}."
    )


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
