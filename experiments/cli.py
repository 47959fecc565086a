"""What every entry point shares: flag parsing, log level and the one-line error path.

  if __name__ == "__main__":
    cli.run(main)

A `ConfigError` (bad flag value, unknown variant, missing data, mismatched run) prints
one line, `error: …`, on stderr and exits with status 2; a flag or config override that
does not exist does the same. Ctrl-C (or SIGTERM where a launcher turns it into one)
exits with 130. Library INFO logs (orbax, absl) stay off unless `--verbosity` is given.

Compiled programs persist in JAX's compilation cache, so reruns, resumed runs and the
trials of a sweep load the steps an earlier process compiled instead of compiling them
again: `$XDG_CACHE_HOME/attn_research/jax` (default `~/.cache/attn_research/jax`), or
the directory in `ATTN_RESEARCH_COMPILATION_CACHE`; `ATTN_RESEARCH_COMPILATION_CACHE=off`
turns it off, and JAX's own `JAX_COMPILATION_CACHE_DIR` takes precedence.

Where Debian's `libtcmalloc-minimal4` is installed, the process restarts itself once with
tcmalloc preloaded (about 9% faster train steps on CPU than glibc's malloc;
docs/speed.md); `ATTN_RESEARCH_TCMALLOC=0` keeps glibc's. Child processes inherit
it.
"""

import functools
import os
import sys
from collections.abc import Callable

import ml_collections
from absl import app, flags, logging

from attn_research import runs
from attn_research.errors import ConfigError

USAGE_ERROR = 2  # bad input: the command cannot run as given
INTERRUPTED = 130


def fail(message: object, status: int = USAGE_ERROR) -> None:
  """Exits with `error: message` on one line of stderr."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(status)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a one-line error for a flag or override that names no field."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f"{e} Pass --help for the flags.")
  except (AttributeError, KeyError) as e:  # raised by ml_collections for an unknown key
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    detail = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
    fail(
      f"a config override names a key that does not exist ({detail}); overrides given: "
      f"{' '.join(overrides)}."
    )
  return []  # unreachable: fail exits


def stored_run_config(argv: list[str]) -> ml_collections.ConfigDict:
  """The config of the run that `--workdir` (or the first of `--workdirs`) names in `argv`
  (empty without one), the default of an entry point's `--config` flag, so that
  `--config.key=value` overrides of a trained run are type-checked against its own config."""
  workdir = None
  for i, arg in enumerate(argv):
    for flag in ("--workdir", "--workdirs"):
      if arg.startswith(f"{flag}="):
        workdir = arg.split("=", 1)[1].split(",")[0]
      elif arg == flag and i + 1 < len(argv):
        workdir = argv[i + 1].split(",")[0]
  path = os.path.join(os.path.expanduser(workdir or ""), runs.CONFIG)
  if not workdir or not os.path.exists(path):
    return ml_collections.ConfigDict()
  from attn_research.training import experiment  # only here: cli is imported without jax

  try:
    return experiment.complete(runs.read_json(path))
  except ConfigError as e:
    fail(e)


CACHE_VARIABLE = "ATTN_RESEARCH_COMPILATION_CACHE"
CACHE_MIN_COMPILE_SECONDS = "0.2"  # programs that compile faster are not worth a file


def compilation_cache_dir() -> str | None:
  """Where compiled programs persist (None: off), from the environment."""
  setting = os.environ.get(CACHE_VARIABLE, "")
  if setting.lower() == "off":
    return None
  if setting:
    return os.path.abspath(setting)
  cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
  return os.path.join(cache_home, "attn_research", "jax")


def use_compilation_cache() -> None:
  """Turns on JAX's persistent compilation cache (see the module docstring); child
  processes inherit it through the environment."""
  if "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return
  directory = compilation_cache_dir()
  if directory is None:
    return
  os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", CACHE_MIN_COMPILE_SECONDS)
  if "jax" in sys.modules:  # imported already: its config read the environment before
    jax = sys.modules["jax"]
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update(
      "jax_persistent_cache_min_compile_time_secs",
      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )


def guarded(main: Callable[[list[str]], None], interrupted: str, argv: list[str]) -> None:
  """`main(argv)` with the log level, the compilation cache and the one-line error path."""
  if not flags.FLAGS["verbosity"].present:  # library INFO logs drown the progress bar
    logging.set_verbosity(logging.WARNING)
  use_compilation_cache()
  try:
    main(argv)
  except ConfigError as e:
    fail(e)
  except KeyboardInterrupt:
    fail(f"interrupted; {interrupted}", INTERRUPTED)


DETERMINISTIC_OPS = "--xla_gpu_deterministic_ops=true"


def deterministic_gpu_ops() -> None:
  """Asks XLA for deterministic GPU kernels (`train.deterministic`): scatter-adds and
  reductions in a fixed order, so two runs of one config match bit for bit. XLA reads its
  flags when the backend starts, so this must run before any jax computation; CPU
  kernels are deterministic already and ignore it."""
  current = os.environ.get("XLA_FLAGS", "")
  if DETERMINISTIC_OPS not in current.split():
    os.environ["XLA_FLAGS"] = f"{current} {DETERMINISTIC_OPS}".strip()


TCMALLOC_VARIABLE = "ATTN_RESEARCH_TCMALLOC"
TCMALLOC = "libtcmalloc_minimal.so.4"
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


def preload_tcmalloc() -> None:
  """Restarts this process with tcmalloc preloaded, when it is installed and not turned
  off; a no-op when it is preloaded already (malloc cannot change after start-up)."""
  preload = os.environ.get("LD_PRELOAD", "")
  if os.environ.get(TCMALLOC_VARIABLE, "1") == "0" or TCMALLOC in preload:
    return
  library = next(
    (path for d in LIBRARY_DIRS if os.path.exists(path := os.path.join(d, TCMALLOC))), None
  )
  if library is None:
    return
  env = {
    **os.environ,
    "LD_PRELOAD": f"{library} {preload}".strip(),
    "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40),  # no "large alloc" lines
  }
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, sys.orig_argv, env)


def run(
  main: Callable[[list[str]], None],
  interrupted: str = "rerun the same command to resume.",
) -> None:
  """`absl.app.run(main)` with the shared flag parsing and error path; `interrupted` is
  the advice printed on Ctrl-C."""
  preload_tcmalloc()
  app.run(functools.partial(guarded, main, interrupted), flags_parser=parse_flags)
