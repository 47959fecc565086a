"""Errors caused by what the user asked for, each naming its fix.

Entry points print a `ConfigError` as one line without a traceback; anything else is a
bug and keeps its traceback.
"""

import os


class ConfigError(ValueError):
  """A config value, dataset or run directory that cannot work as given."""


def make_dirs(path: str, subject: str, fix: str) -> None:
  """Creates directory `path` and its parents; one that cannot be created is the one line
  `{subject} ({the system's reason}); {fix}`."""
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"{subject} ({e.strerror}); {fix}") from e
