r"""Runs a config's sweep (its `get_sweep(arg)`): one `experiments.train` run per trial.

  python -m experiments.sweep --config=experiments/configs/synthetic.py:reverse \
      --root=runs/reverse_sweep [--parallel=2] [--dry_run]
  python -m experiments.sweep --config=experiments/configs/synthetic.py:reverse \
      --root=runs/reverse_sweep --launcher=slurm --parallel=8 --slurm.partition=gpu \
      --slurm.time=12:00:00 --slurm.setup="source .venv/bin/activate" [--dry_run]

Trial t runs in ROOT/<t's name>; ROOT/sweep.json lists the trials. Rerunning the same
command skips completed trials and resumes the others from their checkpoints.
locally: `parallel` processes at a time, each pinned to its own --devices_per_trial GPUs,
or without GPUs to its own share of the CPU cores; failures land in ROOT/<name>/failed.json without stopping the others. slurm: one job
array, see launch/slurm.py. --dry_run prints the commands (local) or the job script
(slurm) instead of running them.
"""

import shlex
import sys

from absl import app, flags

from attn_research import runs
from experiments import cli
from launch import local, slurm
from launch.sweep import Trial, load_sweep, train_command

_CONFIG = flags.DEFINE_string(
  "config", None, "Config file with a get_sweep, e.g. experiments/configs/synthetic.py:reverse."
)
_ROOT = flags.DEFINE_string("root", None, "Sweep directory; each trial runs in ROOT/<trial>.")
_LAUNCHER = flags.DEFINE_enum("launcher", "local", ["local", "slurm"], "Where trials run.")
_PARALLEL = flags.DEFINE_integer(
  "parallel",
  1,
  "Trials at a time. local: 0 = one per GPU (--devices_per_trial), or without GPUs one per "
  "CPU core, each pinned to its own; slurm: array throttle %N, 0 = no limit.",
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print what would run, run nothing.")
_DEVICES = flags.DEFINE_list(
  "devices",
  None,
  "local: GPU ids to share out among trials; default $CUDA_VISIBLE_DEVICES or nvidia-smi's "
  "(none on CPU).",
)
_DEVICES_PER_TRIAL = flags.DEFINE_integer("devices_per_trial", 1, "local: GPUs per trial.")
_PARTITION = flags.DEFINE_string("slurm.partition", "", "slurm: partition; '' = default.")
_TIME = flags.DEFINE_string("slurm.time", "", "slurm: time limit per trial, e.g. 24:00:00.")
_GPUS = flags.DEFINE_integer("slurm.gpus_per_task", 1, "slurm: GPUs per node of a trial.")
_CPUS = flags.DEFINE_integer("slurm.cpus_per_task", 4, "slurm: CPUs per node of a trial.")
_MEM = flags.DEFINE_string("slurm.mem", "", "slurm: memory per node, e.g. 64G; '' = default.")
_NODES = flags.DEFINE_integer(
  "slurm.nodes", 1, "slurm: nodes per trial (> 1: srun, jax.distributed in the trainer)."
)
_SBATCH = flags.DEFINE_multi_string(
  "slurm.sbatch", [], "slurm: extra #SBATCH option, e.g. --account=nlp (repeatable)."
)
_SETUP = flags.DEFINE_string(
  "slurm.setup", "", "slurm: shell line run first, e.g. 'source .venv/bin/activate'."
)
_SIGNAL_SECONDS = flags.DEFINE_integer(
  "slurm.signal_seconds",
  180,
  "slurm: seconds before the time limit that a trial is asked to checkpoint, stop and requeue.",
)
flags.mark_flags_as_required(["config", "root"])


def _local(trials: list[Trial]) -> None:
  devices = local.visible_gpus() if _DEVICES.value is None else _DEVICES.value
  if not _DRY_RUN.value:
    summary = local.run_local(
      trials,
      _ROOT.value,
      parallel=_PARALLEL.value,
      devices=devices,
      devices_per_trial=_DEVICES_PER_TRIAL.value,
    )
    if summary.failed:
      sys.exit(1)
    return
  parallel = _PARALLEL.value or local.auto_parallel(devices, _DEVICES_PER_TRIAL.value)
  slots = local.slots(devices, _DEVICES_PER_TRIAL.value, min(parallel, len(trials)))
  for i, trial in enumerate(trials):
    workdir = trial.workdir(_ROOT.value)
    if runs.is_finished(workdir):
      print(f"# {trial.name}: {runs.read_run(workdir).status}, skipped")
      continue
    prefix = slots[i % len(slots)].prefix()
    print(f"# {trial.name}\n{prefix}{shlex.join(train_command(trial, workdir))}")


def _slurm(trials: list[Trial]) -> None:
  options = slurm.SlurmOptions(
    partition=_PARTITION.value,
    time=_TIME.value,
    gpus_per_task=_GPUS.value,
    cpus_per_task=_CPUS.value,
    mem=_MEM.value,
    nodes=_NODES.value,
    sbatch=tuple(_SBATCH.value),
    setup=_SETUP.value,
    signal_seconds=_SIGNAL_SECONDS.value,
  )
  job = slurm.write_job(trials, _ROOT.value, options, parallel=_PARALLEL.value)
  if job is None:
    print(f"All {len(trials)} trials are finished; nothing to submit.")
    return
  script_file, pending = job
  print(f"{len(pending)} of {len(trials)} trials to run; wrote {script_file}")
  if _DRY_RUN.value:
    with open(script_file, encoding="utf-8") as f:
      print(f.read(), end="")
  else:
    print(slurm.submit(script_file))


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  trials = load_sweep(_CONFIG.value)
  (_local if _LAUNCHER.value == "local" else _slurm)(trials)


if __name__ == "__main__":
  cli.run(main, interrupted="rerun the same command to resume the unfinished trials.")
