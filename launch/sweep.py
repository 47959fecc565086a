"""Sweeps: a config file's `get_sweep(arg, hyper)` expanded into named, validated trials.

A config file may define, next to `get_config`, a list of override sets built with the
combinators below (big_vision's `hyper.product` / `zipit` / `chainit`), which it
receives as `hyper`:

  def get_sweep(arg: str | None, hyper) -> list[dict[str, Any]]:
    return hyper.product(hyper.axis("model.decoder.type", ["luong", "none_state"]),
                         hyper.seeds(2))

Each override set is one `Trial`: a run of `experiments.train` in `ROOT/<trial name>`
with `--config.<key>=<value>` flags that ml_collections parses back to the same values.
"""

import ast
import dataclasses
import hashlib
import itertools
import json
import os
import re
import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from attn_research import runs
from attn_research.config import files as config_files
from attn_research.config import overrides as config_overrides
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


def write_manifest(root: str, trials: Sequence[Trial]) -> None:
  """Records the sweep in ROOT/sweep.json, so its runs can be found and compared later."""
  os.makedirs(root, exist_ok=True)
  manifest = {
    "config": trials[0].config if trials else "",
    "trials": [{"name": t.name, "overrides": t.overrides} for t in trials],
  }
  runs.write_json(os.path.join(root, MANIFEST), manifest)


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


def _round_trips(value: Any) -> bool:
  """Whether a tuple survives the command line (`repr`, then ast.literal_eval)."""
  if not isinstance(value, tuple):
    return True
  try:
    return ast.literal_eval(repr(value)) == value
  except (ValueError, SyntaxError):
    return False


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
  checked, seen = [], {}
  for i, overrides in enumerate(sweep):
    where = f"{config}: trial {i} {overrides!r}"
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
      raise ConfigError(f"{where} is not a dict of dotted config keys; fix get_sweep.")
    try:
      trial_config = config_overrides.apply_overrides(base, overrides)
    except ConfigError as e:
      raise ConfigError(f"{where}: {e} Fix get_sweep.") from None
    values = {key: config_overrides.flatten(trial_config)[key] for key in overrides}
    for key, value in values.items():
      if not _round_trips(value):
        raise ConfigError(
          f"{where}: {key}={value!r} has elements that a command line cannot carry; fix get_sweep."
        )
    effective = json.dumps(config_overrides.stored(trial_config), sort_keys=True)
    if effective in seen:
      raise ConfigError(
        f"{where} gives the same config as trial {seen[effective]}; remove one of them."
      )
    seen[effective] = i
    checked.append(values)
  names = trial_names(checked)
  return [Trial(config, n, o) for n, o in zip(names, checked, strict=True)]


HELPERS = types.SimpleNamespace(
  axis=axis, fixed=fixed, seeds=seeds, product=product, zip=zip_, chain=chain
)


def load_sweep(config: str) -> list[Trial]:
  """The trials of `path[:arg]`'s `get_sweep(arg, hyper)`, checked against its `get_config`.

  `hyper` is `HELPERS`, this module's combinators, so config files need not import the
  launcher.
  """
  path, _, arg = config.partition(":")
  module = config_files.load_module(path)
  if not hasattr(module, "get_sweep"):
    raise ConfigError(
      f"{path} defines no get_sweep(arg, hyper); add one (see launch/sweep.py) or train "
      "single runs with experiments.train."
    )
  return make_trials(
    config, config_files.load_config(config), module.get_sweep(arg or None, HELPERS)
  )
