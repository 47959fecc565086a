"""What every entry point shares: flag parsing, log level and the one-line error path.

  if __name__ == "__main__":
    cli.run(main)

A `ConfigError` (bad flag value, unknown variant, missing data, mismatched run) prints
one line, `error: …`, on stderr and exits with status 2; a flag or config override that
does not exist does the same. Ctrl-C (or SIGTERM where a launcher turns it into one)
exits with 130. Library INFO logs (orbax, absl) stay off unless `--verbosity` is given.
"""

import functools
import sys
from collections.abc import Callable

from absl import app, flags, logging

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


def _guarded(main: Callable[[list[str]], None], interrupted: str, argv: list[str]) -> None:
  if not flags.FLAGS["verbosity"].present:  # library INFO logs drown the progress bar
    logging.set_verbosity(logging.WARNING)
  try:
    main(argv)
  except ConfigError as e:
    fail(e)
  except KeyboardInterrupt:
    fail(f"interrupted; {interrupted}", INTERRUPTED)


def run(
  main: Callable[[list[str]], None],
  interrupted: str = "rerun the same command to resume.",
) -> None:
  """`absl.app.run(main)` with the shared flag parsing and error path; `interrupted` is
  the advice printed on Ctrl-C."""
  app.run(functools.partial(_guarded, main, interrupted), flags_parser=parse_flags)
