"""Sweeps: a config file's `get_sweep(arg)` expanded into named, validated trials.

A config file may define, next to `get_config`, a list of override sets built with the
combinators below (big_vision's `hyper.product` / `zipit` / `chainit`, made public):

  def get_sweep(arg: str | None) -> list[dict[str, Any]]:
    return sweep.product(sweep.axis("model.decoder.type", ["luong", "none_state"]),
                         sweep.seeds(2))

Each override set is one `Trial`: a run of `experiments.train` in `ROOT/<trial name>`
with `--config.<key>=<value>` flags that ml_collections parses back to the same values.
"""

import ast
import dataclasses
import difflib
import hashlib
import importlib.util
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from attn_research.errors import ConfigError

Overrides = dict[str, Any]
MANIFEST = "sweep.json"  # the sweep's config and trials, written into ROOT
MAX_NAME = 96  # longer names are cut and made unique by a hash suffix
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


# ----------------------------------------------------------------------------------------
# Combinators: each returns a list of override sets.


def axis(key: str, values: Iterable[Any]) -> list[Overrides]:
  """One trial per value of the dotted config `key`."""
  return [{key: value} for value in values]


def fixed(key: str, value: Any) -> list[Overrides]:
  """A single setting, to combine with others through `product`."""
  return [{key: value}]


def seeds(n: int, key: str = "seed") -> list[Overrides]:
  """Seeds 0 … n-1."""
  return axis(key, range(n))


def _merge(parts: Iterable[Overrides], combinator: str) -> Overrides:
  merged: Overrides = {}
  for part in parts:
    twice = merged.keys() & part.keys()
    if twice:
      raise ConfigError(f"{combinator}() sets {sorted(twice)} twice; give each key to one axis.")
    merged.update(part)
  return merged


def product(*sweeps: list[Overrides]) -> list[Overrides]:
  """Every combination, the last sweep varying fastest."""
  return [_merge(parts, "product") for parts in itertools.product(*sweeps)]


def zip_(*sweeps: list[Overrides]) -> list[Overrides]:
  """The i-th trial merges the i-th override set of every sweep (equal lengths)."""
  if len({len(s) for s in sweeps}) > 1:
    raise ConfigError(f"zip_() needs sweeps of equal length, got {[len(s) for s in sweeps]}.")
  return [_merge(parts, "zip_") for parts in zip(*sweeps, strict=True)]


def chain(*sweeps: list[Overrides]) -> list[Overrides]:
  """The trials of every sweep, one after the other."""
  return [dict(overrides) for s in sweeps for overrides in s]


# ----------------------------------------------------------------------------------------
# Trials.


def render_value(value: Any) -> str:
  """`value` as the text of a `--config.key=` flag, which ml_collections parses back."""
  if isinstance(value, bool):
    return "true" if value else "false"  # absl's BooleanParser spelling
  if isinstance(value, float):
    return repr(value)  # shortest text that round-trips
  if isinstance(value, tuple):
    return repr(value)  # ml_collections' TupleParser: ast.literal_eval
  return str(value)  # str fields take the text as is; ints print exactly


@dataclasses.dataclass(frozen=True)
class Trial:
  """One run of a sweep.

  Attributes:
    config: the config file, with its optional `:arg`.
    name: the run directory's name under the sweep root, derived from `overrides`.
    overrides: dotted config keys → values, as the config holds them.
  """

  config: str
  name: str
  overrides: Overrides

  def workdir(self, root: str) -> str:
    return os.path.join(os.path.abspath(root), self.name)

  def train_args(self, workdir: str) -> list[str]:
    """The arguments of `experiments.train` for this trial in `workdir`."""
    flags = [f"--config.{key}={render_value(value)}" for key, value in self.overrides.items()]
    return [f"--config={self.config}", f"--workdir={workdir}", *flags]


def train_command(trial: Trial, workdir: str, python: str = sys.executable) -> list[str]:
  """The default trial command: `python -m experiments.train …` (run from the repo root)."""
  return [python, "-m", "experiments.train", *trial.train_args(workdir)]


def is_completed(workdir: str) -> bool:
  """Whether `workdir` holds a finished run (its result.json says so)."""
  from attn_research.training.workdir import RESULT  # imports jax: not at config-load time

  try:
    with open(os.path.join(workdir, RESULT), encoding="utf-8") as f:
      return json.load(f).get("status") == "completed"
  except (OSError, ValueError):
    return False


def write_manifest(root: str, trials: Sequence[Trial]) -> None:
  """Records the sweep in ROOT/sweep.json, so its runs can be found and compared later."""
  from attn_research.training.workdir import atomic_write  # imports jax

  os.makedirs(root, exist_ok=True)
  manifest = {
    "config": trials[0].config if trials else "",
    "trials": [{"name": t.name, "overrides": t.overrides} for t in trials],
  }
  atomic_write(os.path.join(root, MANIFEST), json.dumps(manifest, indent=2) + "\n")


def _canonical(overrides: Overrides) -> str:
  return json.dumps(overrides, sort_keys=True)


def _short_hash(overrides: Overrides) -> str:
  return hashlib.sha1(_canonical(overrides).encode()).hexdigest()[:8]


def _labels(keys: Iterable[str]) -> dict[str, str]:
  """Each key's shortest dotted suffix that no other key of the sweep ends with."""
  keys = sorted(set(keys))
  labels = {}
  for key in keys:
    parts = key.split(".")
    for k in range(1, len(parts) + 1):
      suffix = parts[-k:]
      if not any(o != key and o.split(".")[-k:] == suffix for o in keys):
        break
    labels[key] = ".".join(suffix)
  return labels


def _name_value(value: Any) -> str:
  if isinstance(value, tuple):
    return "-".join(_name_value(v) for v in value)
  return render_value(value)


def trial_names(sweep: Sequence[Overrides]) -> list[str]:
  """Readable, filesystem-safe, unique names, e.g. `score=dot_seed=1`.

  A name is `label=value` pairs joined by `_`, a label being the key's last component
  (or more of them where two keys share it). Names that collide or run past `MAX_NAME`
  get a hash of the overrides as suffix, so a name depends only on its own trial and the
  sweep's keys.
  """
  labels = _labels(k for overrides in sweep for k in overrides)
  names = []
  for overrides in sweep:
    pairs = (f"{labels[k]}={_name_value(v)}" for k, v in overrides.items())
    name = _UNSAFE.sub("-", "_".join(pairs)) or "default"
    if len(name) > MAX_NAME:
      name = f"{name[: MAX_NAME - 9]}-{_short_hash(overrides)}"
    names.append(name)
  counts = {n: names.count(n) for n in names}
  return [
    n if counts[n] == 1 else f"{n}-{_short_hash(o)}" for n, o in zip(names, sweep, strict=True)
  ]


def _round_trips(value: tuple) -> bool:
  try:
    return ast.literal_eval(repr(value)) == value
  except (ValueError, SyntaxError):
    return False


def _check_value(key: str, default: Any, value: Any) -> Any:
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
    if ok and not _round_trips(value):
      raise TypeError(f"{value!r} has elements that a command line cannot carry")
  else:
    raise TypeError(f"{key} is a {type(default).__name__} field, which sweeps cannot set")
  if not ok:
    raise TypeError(f"{value!r} is a {type(value).__name__}, {key} a {type(default).__name__}")
  return value


def _leaf_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  out = []
  for k, v in config.items():
    out.extend(
      _leaf_keys(v, f"{prefix}{k}.")
      if isinstance(v, ml_collections.ConfigDict)
      else [f"{prefix}{k}"]
    )
  return out


def _lookup(config: ml_collections.ConfigDict, key: str) -> Any:
  node: Any = config
  for part in key.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      raise KeyError(key)
    node = node[part]
  return node


def make_trials(
  config: str, base: ml_collections.ConfigDict, sweep: Sequence[Overrides]
) -> list[Trial]:
  """Validates `sweep` against `base` (the config of `config`) and names its trials.

  Raises:
    ConfigError: an override names no field of `base`, has the wrong type, or two
      trials give the same config.
  """
  if not sweep:
    raise ConfigError(f"{config}: get_sweep returned no trials; return at least one.")
  leaves = _leaf_keys(base)
  checked, seen = [], {}
  for i, overrides in enumerate(sweep):
    where = f"{config}: trial {i} {overrides!r}"
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
      raise ConfigError(f"{where} is not a dict of dotted config keys; fix get_sweep.")
    values, trial_config = {}, base.to_dict()
    for key, value in overrides.items():
      try:
        default = _lookup(base, key)
      except KeyError:
        close = difflib.get_close_matches(key, leaves, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(
          f"{where} sets {key}, which is not a config key{hint}; fix get_sweep."
        ) from None
      if isinstance(default, ml_collections.ConfigDict):
        raise ConfigError(f"{where} sets the section {key}; set its fields one by one.")
      try:
        values[key] = _check_value(key, default, value)
      except TypeError as e:
        raise ConfigError(f"{where}: {e}; fix get_sweep.") from None
      *parents, leaf = key.split(".")
      node = trial_config
      for part in parents:
        node = node[part]
      node[leaf] = values[key]
    effective = json.dumps(trial_config, sort_keys=True, default=repr)
    if effective in seen:
      raise ConfigError(
        f"{where} gives the same config as trial {seen[effective]}; remove one of them."
      )
    seen[effective] = i
    checked.append(values)
  names = trial_names(checked)
  return [Trial(config, n, o) for n, o in zip(names, checked, strict=True)]


def load_sweep(config: str) -> list[Trial]:
  """The trials of `path[:arg]`'s `get_sweep(arg)`, checked against its `get_config`.

  Loads the file the way ml_collections' `config_flags` does, so `get_config` sees the
  same argument as in `experiments.train --config=path[:arg]`.
  """
  path, _, arg = config.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"No config file {path}; pass --config=path/to/config.py[:arg].")
  name = "sweep_config_" + re.sub(r"\W", "_", os.path.splitext(os.path.abspath(path))[0])
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    raise ConfigError(
      f"{path} defines no get_sweep(arg); add one (see launch/sweep.py) or train single "
      "runs with experiments.train."
    )
  base = module.get_config(arg) if arg else module.get_config()
  return make_trials(config, base, module.get_sweep(arg or None))
