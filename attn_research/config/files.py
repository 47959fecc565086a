"""Config files: Python files whose `get_config(arg)` returns an `ml_collections.ConfigDict`,
named `path[:arg]`, and the `arg` they parse."""

import importlib.util
import os
import re
from typing import Any

import ml_collections

from attn_research.errors import ConfigError


def load_module(path: str) -> Any:
  """Imports the config file `path` (run from the repository root, as every entry point)."""
  if not os.path.isfile(path):
    raise ConfigError(f"No config file {path}; pass --config=path/to/config.py[:arg].")
  name = "config_" + re.sub(r"\W", "_", os.path.splitext(os.path.abspath(path))[0])
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`get_config(arg)` of `path[:arg]`, as `experiments.train --config=path[:arg]` sees it."""
  path, _, arg = spec.partition(":")
  module = load_module(path)
  return module.get_config(arg) if arg else module.get_config()


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """A config file's `arg` as fields (big_vision's `parse_arg`): `"en-de,scale=tiny"`.

  Every key must be one of `defaults`, and each value is parsed as the type of its
  default; a bare value (no `=`) sets the first key.
  """
  parsed = dict(defaults)
  first = next(iter(defaults))
  for part in filter(None, (arg or "").split(",")):
    key, eq, value = part.partition("=")
    key, value = (key.strip(), value.strip()) if eq else (first, key.strip())
    if key not in defaults:
      raise ConfigError(
        f"Unknown config argument {key!r} in {arg!r}; valid: {', '.join(defaults)}."
      )
    kind = type(defaults[key])
    try:
      parsed[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    except ValueError:
      raise ConfigError(f"Config argument {key}={value!r} must be a {kind.__name__}.") from None
  return ml_collections.ConfigDict(parsed)
