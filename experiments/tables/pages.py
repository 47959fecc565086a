"""A reproduced table's docs page: DOCS/<table>.md, written by `experiments.reproduce --docs`.

The page states the table's title, the command that reproduces it, the machine, the date,
the code and the wall time, then the table exactly as `table.write` wrote it to
ROOT/<table>.md (its figure copied beside the page), so that measured numbers in the docs
are regenerated rather than edited. Nothing here initialises jax: the machine is read from
/proc/cpuinfo, the jax version from its package metadata and the GPUs from nvidia-smi.
"""

import collections
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
from collections.abc import Mapping, Sequence

from attn_research import runs
from attn_research.errors import ConfigError, make_dirs
from experiments.tables import table as tables
from launch import local
from launch.sweep import Trial

PYTHON = ".venv/bin/python"  # as the README's commands run it
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Invocation:
  """One `experiments.reproduce` run, for its page.

  Attributes:
    command: its command line (`command`).
    seconds: its wall time.
    summary: its trials by outcome.
    gpus: the GPU ids its trials were given; empty: CPU only.
  """

  command: str
  seconds: float
  summary: local.Summary
  gpus: tuple[str, ...] = ()


def command(given: Sequence[tuple[str, object]]) -> str:
  """`experiments.reproduce` with the flags `given` (name, value), in the order given."""
  args = [
    (f"--{name}" if value else f"--no{name}") if isinstance(value, bool) else f"--{name}={value}"
    for name, value in given
  ]
  return shlex.join([PYTHON, "-m", "experiments.reproduce", *args])


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
          return value.strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or "unknown CPU"


def _gpu_names(gpus: Sequence[str]) -> list[str]:
  """nvidia-smi's name of each GPU id ("GPU" where it gives none)."""
  query = ["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"]
  try:
    out = subprocess.run(query, capture_output=True, text=True, check=False, timeout=30).stdout
  except (OSError, subprocess.SubprocessError):
    out = ""
  names = dict(line.split(", ", 1) for line in out.splitlines() if ", " in line)
  return [names.get(gpu, "GPU") for gpu in gpus]


def machine(gpus: Sequence[str] = ()) -> str:
  """E.g. "AMD EPYC, 2 cores, no GPU (XLA CPU), jax 0.10.2"."""
  usable, total = len(local.usable_cpus()), os.cpu_count() or 0
  cores = f"{usable} cores" if usable == total else f"{usable} of {total} cores"
  if gpus:
    count = collections.Counter(_gpu_names(gpus))
    accelerator = ", ".join(f"{n} × {name}" for name, n in count.items())
  else:
    accelerator = "no GPU (XLA CPU)"
  try:
    jax = f"jax {importlib.metadata.version('jax')}"
  except importlib.metadata.PackageNotFoundError:
    jax = "jax not installed"
  return f"{_cpu_model()}, {cores}, {accelerator}, {jax}"


def code_version() -> str:
  """The checkout's commit, e.g. "`955a307`" ("" outside a git checkout)."""

  def git(*args: str) -> str:
    try:
      result = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=30
      )
    except (OSError, subprocess.SubprocessError):
      return ""
    return result.stdout.strip() if result.returncode == 0 else ""

  commit = git("rev-parse", "--short", "HEAD")
  if not commit:
    return ""
  # Pages written by earlier tables of the same session are not code.
  dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs")
  return f"`{commit}`" + (" with uncommitted changes" if dirty else "")


def duration(seconds: float) -> str:
  """E.g. "55 s", "23 min 37 s", "1 h 02 min"."""
  minutes, secs = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  if hours:
    return f"{hours} h {minutes:02d} min"
  return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def trial_seconds(trials: Mapping[str, Sequence[Trial]], run_root: str) -> list[float]:
  """The `wall_seconds` of each completed trial's result.json under `run_root`."""
  found = []
  for row in trials.values():
    for trial in row:
      result = tables.outcome(trial, run_root).result
      if result is not None and result.get("wall_seconds") is not None:
        found.append(float(result["wall_seconds"]))
  return found


def check_dir(docs: str, root: str) -> None:
  """Creates `docs` before any trial runs, so that a page that cannot be written fails now.

  Raises:
    ConfigError: it cannot be created or written, or it is `root` (the page would replace
      the table).
  """
  if os.path.realpath(docs) == os.path.realpath(root):
    raise ConfigError(f"--docs={docs} is --root: the page would replace its table; pass another.")
  make_dirs(docs, f"--docs={docs} cannot be created", "pass a writable one.")
  if not os.access(docs, os.W_OK | os.X_OK):
    raise ConfigError(f"--docs={docs} is not writable; pass a writable directory.")


def render(
  table: tables.Table,
  markdown: str,
  invocation: Invocation,
  seconds: Sequence[float],
  *,
  machine: str,
  date: str,
  code: str = "",
) -> str:
  """The page: title, provenance, then `markdown` (the table as `table.write` wrote it)."""
  if seconds:
    trials = (
      f"The {len(seconds)} finished trials' own wall times (`wall_seconds` in their "
      f"result.json) sum to {duration(sum(seconds))} ({sum(seconds):.0f} s), "
      f"{min(seconds):.0f}–{max(seconds):.0f} s each."
    )
  else:
    trials = "No finished trial states its wall time."
  lines = [
    "<!-- Written by experiments.reproduce --docs from the run it made: rerun the command "
    "below rather than edit the numbers. -->",
    f"# {table.title}",
    "",
    f"measured {date} on {machine}; regenerate with:",
    "",
    "```bash",
    invocation.command,
    "```",
    "",
    *([f"Code: {code}.", ""] if code else []),
    f"Wall time of this invocation: {duration(invocation.seconds)} "
    f"({invocation.seconds:.0f} s); its trials: {invocation.summary}. {trials}",
    "",
    markdown.rstrip("\n"),
  ]
  return "\n".join(lines) + "\n"


def write(
  docs: str,
  table: tables.Table,
  scale: str,
  trials: Mapping[str, Sequence[Trial]],
  root: str,
  markdown: str,
  invocation: Invocation,
  now: datetime.datetime | None = None,
) -> list[str]:
  """Writes DOCS/<table>.md from `markdown` (what `table.write` wrote to ROOT/<table>.md),
  with ROOT/<table>.png copied beside it where the markdown shows it; returns the paths.

  Raises:
    ConfigError: `docs` cannot be written.
  """
  now = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
  seconds = trial_seconds(trials, os.path.join(root, table.name, scale))
  text = render(
    table,
    markdown,
    invocation,
    seconds,
    machine=machine(invocation.gpus),
    date=now.strftime("%Y-%m-%d %H:%M UTC"),
    code=code_version(),
  )
  figure = f"{table.name}.png"
  source = os.path.join(root, figure)
  page, written = os.path.join(docs, f"{table.name}.md"), []
  try:
    os.makedirs(docs, exist_ok=True)
    if f"]({figure})" in markdown and os.path.exists(source):  # the figure the table shows
      with open(source, "rb") as f:
        runs.atomic_write(os.path.join(docs, figure), f.read())
      written.append(os.path.join(docs, figure))
    runs.atomic_write(page, text)
  except OSError as e:
    raise ConfigError(f"--docs={docs}: cannot write the page ({e}); pass a writable one.") from e
  return [page, *written]
