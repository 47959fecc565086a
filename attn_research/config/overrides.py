"""Configs as values: stored as JSON, flattened to dotted keys, overridden key by key."""

import copy
import difflib
import json
from collections.abc import Mapping
from typing import Any

import ml_collections

from attn_research.errors import ConfigError


def stored(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
  """`config` as config.json holds it: plain dicts, tuples as lists."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return json.loads(json.dumps(config))


def hyperparameters(config: ml_collections.ConfigDict) -> dict[str, int | float | str | bool]:
  """`config` flattened for experiment trackers (TensorBoard's HParams, W&B, MLflow),
  which take scalars only: other leaves (bucket tuples) as their text."""
  return {
    key: value if isinstance(value, int | float | str | bool) else str(value)
    for key, value in flatten(config).items()
  }


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  """Nested dicts (or a ConfigDict) → `{"a.b.c": leaf}`, in insertion order."""
  if isinstance(tree, ml_collections.ConfigDict):
    tree = tree.to_dict()
  if not isinstance(tree, Mapping):
    return {prefix[:-1]: tree}
  out = {}
  for k, v in tree.items():
    out.update(flatten(v, f"{prefix}{k}."))
  return out


def config_differences(old: Any, new: Any) -> list[str]:
  """Dotted keys whose values differ, as `key: old → new` (tuples equal their lists). A
  stored config is compared once completed (`experiment.complete`), so that a key it
  predates reads as its default."""
  a, b = (flatten(stored(c)) for c in (old, new))
  return [
    f"{k}: {a.get(k, '<absent>')!r} → {b.get(k, '<absent>')!r}"
    for k in sorted(a.keys() | b.keys())
    if a.get(k, "<absent>") != b.get(k, "<absent>")
  ]


def _lookup(config: ml_collections.ConfigDict, key: str) -> Any:
  node: Any = config
  for part in key.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      raise KeyError(key)
    node = node[part]
  return node


def _coerce(key: str, default: Any, value: Any) -> Any:
  """`value` as the field holding `default` stores it; raises TypeError if it cannot."""
  if isinstance(default, bool):
    ok = isinstance(value, bool)
  elif isinstance(default, int):
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif isinstance(default, float):
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    value = float(value) if ok else value
  elif isinstance(default, str):
    ok = isinstance(value, str)
  elif isinstance(default, tuple):
    ok = isinstance(value, tuple | list)
    value = tuple(value) if ok else value
  else:
    raise TypeError(f"{key} is a {type(default).__name__} field, which overrides cannot set")
  if not ok:
    raise TypeError(f"{value!r} is a {type(value).__name__}, {key} a {type(default).__name__}")
  return value


def apply_overrides(
  base: ml_collections.ConfigDict, overrides: Mapping[str, Any]
) -> ml_collections.ConfigDict:
  """A copy of `base` with dotted `overrides` set, each checked against its field.

  Raises:
    ConfigError: a key names no field (with the closest one), a whole section, or a
      value of the wrong type.
  """
  config = copy.deepcopy(base)
  leaves = list(flatten(base))
  for key, value in overrides.items():
    try:
      default = _lookup(base, key)
    except KeyError:
      close = difflib.get_close_matches(key, leaves, n=1)
      hint = f" (did you mean {close[0]}?)" if close else ""
      raise ConfigError(f"{key} is not a config key{hint}.") from None
    if isinstance(default, ml_collections.ConfigDict):
      raise ConfigError(f"{key} is a config section; set its fields one by one.")
    try:
      value = _coerce(key, default, value)
    except TypeError as e:
      raise ConfigError(f"{e}.") from None
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node[part]
    with node.unlocked():
      node[leaf] = value
  return config
