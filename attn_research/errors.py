"""Errors caused by what the user asked for, each naming its fix.

Entry points print a `ConfigError` as one line without a traceback; anything else is a
bug and keeps its traceback.
"""


class ConfigError(ValueError):
  """A config value, dataset or run directory that cannot work as given."""
