r"""Runs a paper table's sweep and prints our numbers beside the paper's.

  python -m experiments.reproduce --table=luong2015_table4 --scale=tiny --root=runs/tables \
      [--seeds=N] [--fetch] [--parallel=N] [--docs=docs/papers] [--dry_run]

Trials run in ROOT/<table>/<scale>/<row>[_seed=<s>] through `launch.local`; rerunning the
command skips finished trials and resumes the others; by default as many run at once as
there are GPUs, or without GPUs CPU cores, each pinned to its own. Then ROOT/<table>.md
(and ROOT/<table>.png for tables with a BLEU-by-length figure) is written and printed, and
with --docs the table's docs page DOCS/<table>.md (`experiments.tables.pages`: the command,
machine, date and wall time above that markdown).
Scales: tiny (minutes on a 2-core CPU, offline data), small (hours on one GPU), paper (the
paper's data and hyperparameters as far as the codebase has them). Tables: the names of
`experiments.tables.TABLES`, listed in docs/papers.md (an unknown --table names them too).
"""

import os
import shlex
import time
from collections.abc import Sequence

from absl import app, flags

from attn_research import runs
from attn_research.config import files as config_files
from attn_research.config import overrides as config_overrides
from attn_research.errors import ConfigError
from experiments import cli
from experiments.tables import TABLES, pages
from experiments.tables import table as tables
from launch import local
from launch.sweep import Trial, train_command

_TABLE = flags.DEFINE_string("table", None, "Paper table, e.g. luong2015_table4.")
_SCALE = flags.DEFINE_enum("scale", None, list(tables.SCALES), "How big the runs are.")
_ROOT = flags.DEFINE_string("root", None, "Output directory: tables, figures and trial runs.")
_PARALLEL = flags.DEFINE_integer(
  "parallel", 0, "Trials at a time; 0: one per GPU, or without GPUs one per CPU core."
)
_SEEDS = flags.DEFINE_integer(
  "seeds",
  0,
  "Trials per row: seeds 0 … N-1 in ROW_seed=S directories; 1: the config's own seed in ROW "
  f"(where single-seed runs of earlier versions are); 0: the table's default "
  f"({tables.DEFAULT_SEEDS['tiny']} at tiny scale, else 1 unless the table says otherwise).",
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the trials and their commands, run nothing.")
_FETCH = flags.DEFINE_bool(
  "fetch", False, "First download what the datasets read (debian_l10n: apt-get download)."
)
_DOCS = flags.DEFINE_string(
  "docs",
  "",
  "Also write the table's docs page DOCS/<table>.md (e.g. docs/papers): the command, machine, "
  "date and wall time above the table; empty: no page.",
)
flags.mark_flags_as_required(["table", "scale", "root"])
# The flags a page's command repeats when given, in this order (--dry_run writes no page).
_COMMAND_FLAGS = (_TABLE, _SCALE, _ROOT, _SEEDS, _PARALLEL, _FETCH, _DOCS)


def sweep_root(root: str, table: tables.Table, scale: str) -> str:
  return os.path.join(root, table.name, scale)


def dry_run(table: tables.Table, scale: str, trials: dict[str, list[Trial]], root: str) -> str:
  """The trials a run would start (with their commands) and the rows it would not run."""
  run_root = sweep_root(root, table, scale)
  flat = [t for row in trials.values() for t in row]
  todo = [t for t in flat if not runs.is_finished(t.workdir(run_root))]
  lines = [
    f"{table.name} at scale {scale}: {len(flat)} trials ({len(flat) - len(todo)} finished) "
    f"in {run_root}"
  ]
  for row in table.rows:
    if row.name not in trials:
      lines.append(f"# {row.label}: not run ({row.note})")
      continue
    for trial in trials[row.name]:
      workdir = trial.workdir(run_root)
      if runs.is_finished(workdir):
        status = runs.read_run(workdir).status
        lines.append(f"# {row.label} — {trial.name}: {status}, skipped")
      else:
        lines.append(f"# {row.label} — {trial.name}\n{shlex.join(train_command(trial, workdir))}")
  return "\n".join(lines)


def check_workdirs(table: tables.Table, scale: str, trials: Sequence[Trial], root: str) -> None:
  """Refuses trial directories holding a run of another config (say, an older step count),
  whose numbers would otherwise be printed as this table's."""
  base = config_files.load_config(table.setup(scale).config)
  for trial in trials:
    run = runs.Workdir(trial.workdir(root), writer=False)
    if not run.exists(runs.CONFIG):
      continue
    diff = config_overrides.config_differences(
      run.read_json(runs.CONFIG), tables.trial_config(base, trial)
    )
    if diff:
      raise ConfigError(
        f"{run.path} holds a run of another config ({'; '.join(diff[:4])}); "
        "delete it or pass another --root."
      )


def prepare_data(
  table: tables.Table, scale: str, trials: Sequence[Trial], fetch: bool = False
) -> None:
  """Builds each dataset once before the trials start, so that they do not all build it at
  once, and a missing dataset stops the run with its fix before any training. With
  `fetch`, first downloads the inputs of datasets that can fetch them."""
  from attn_research.data import datasets

  base = config_files.load_config(table.setup(scale).config)
  needed = {}
  for trial in trials:
    dataset = datasets.open_dataset(tables.trial_config(base, trial).dataset)
    needed.setdefault((dataset.name, dataset.data_dir, dataset.files), dataset)
  for _, dataset in sorted(needed.items(), key=lambda item: item[0][:2]):
    if fetch and dataset.can_fetch:
      print(f"fetching {dataset.name} into {datasets.manual_dir(dataset.data_dir)}")
      dataset.fetch()
    print(f"preparing {dataset.name}")
    dataset.load()


def run(
  table: tables.Table,
  scale: str,
  trials: dict[str, list[Trial]],
  root: str,
  *,
  parallel: int = 0,
  devices: Sequence[str] = (),
  command: local.Command = train_command,
) -> tuple[local.Summary, str]:
  """Runs the unfinished `trials` (from `tables.plan`), then writes and returns the markdown."""
  flat = tables.launch_order(trials)
  run_root = sweep_root(root, table, scale)
  check_workdirs(table, scale, flat, run_root)
  summary = local.run_local(flat, run_root, parallel=parallel, devices=devices, command=command)
  return summary, tables.write(table, scale, trials, root)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  started = time.monotonic()
  table = TABLES.get(_TABLE.value)
  trials = tables.plan(table, _SCALE.value, _SEEDS.value)
  if _DRY_RUN.value:
    print(dry_run(table, _SCALE.value, trials, _ROOT.value))
    return
  if _DOCS.value:
    pages.check_dir(_DOCS.value, _ROOT.value)  # before hours of trials, not after
  prepare_data(table, _SCALE.value, [t for row in trials.values() for t in row], _FETCH.value)
  gpus = local.visible_gpus()
  summary, markdown = run(
    table, _SCALE.value, trials, _ROOT.value, parallel=_PARALLEL.value, devices=gpus
  )
  written = [f"{table.name}.{ext}" for ext in ("md", "png")]
  written = [
    os.path.join(_ROOT.value, w) for w in written if os.path.exists(os.path.join(_ROOT.value, w))
  ]
  if _DOCS.value:
    given = [(f.name, f.value) for f in _COMMAND_FLAGS if f.present]
    invocation = pages.Invocation(
      pages.command(given), time.monotonic() - started, summary, tuple(gpus)
    )
    written += pages.write(
      _DOCS.value, table, _SCALE.value, trials, _ROOT.value, markdown, invocation
    )
  print(f"\n{markdown}\nwrote {', '.join(written)}")
  if summary.failed:
    cli.fail(f"{len(summary.failed)} trials failed (see the table's notes); fix and rerun.", 1)


if __name__ == "__main__":
  cli.run(main, interrupted="rerun the same command to resume the unfinished trials.")
