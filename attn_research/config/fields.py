"""Config fields: the one declaration of each config key, with its default, constraint
and doc.

Every config section is a frozen dataclass owned by the module that reads it
(`AttentionConfig` by the attention layer, `TrainConfig` by the trainer, …); each key is
one `field(constraint, default, doc)` and each subsection one `section(cls, doc)`. From
these declarations alone come the experiment's default config (`defaults`), its table of
checks (`constraints`), the typed section an implementation receives (`parse`, which
reads a key a stored config lacks as its default) and the key reference (`reference`).
"""

import dataclasses
import itertools
import math
import numbers
import os
import re
from collections.abc import Collection
from typing import Any, TypeVar

import ml_collections

from attn_research.errors import ConfigError

CONSTRAINT, DOC, SECTION = "constraint", "doc", "section"  # dataclass field metadata keys


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
  if high is None:
    return f"{'>' if low_open else '≥'} {low}" if low is not None else ""
  if low is None:
    return f"{'<' if high_open else '≤'} {high}"
  return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


@dataclasses.dataclass(frozen=True)
class Constraint:
  """What a key's value must be. `check` returns the problem, None when the value is
  valid; the message reads `{key}={value!r} {problem}`.

  Attributes:
    note: what special values mean, appended to the problem (e.g. "0: greedy").
  """

  note: str = ""

  def check(self, value: Any, num_devices: int) -> str | None:
    raise NotImplementedError

  def problem(self, text: str) -> str:
    return f"{text} ({self.note})." if self.note else f"{text}."

  def describe(self) -> str:
    """What a valid value is, for the key reference: what a value of no type is told."""
    return self.check(object(), 1) or ""


@dataclasses.dataclass(frozen=True)
class Int(Constraint):
  """An int (not a bool) within inclusive bounds."""

  low: int | None = None
  high: int | None = None

  def check(self, value, num_devices):
    if (
      not _is_int(value)
      or (self.low is not None and value < self.low)
      or (self.high is not None and value > self.high)
    ):
      return self.problem(f"must be an int {_interval(self.low, self.high, False, False)}")
    return None


@dataclasses.dataclass(frozen=True)
class BatchSize(Int):
  """An int ≥ 1 that splits evenly over the devices (`parallel.check_batch_size`)."""

  low: int | None = 1

  def check(self, value, num_devices):
    problem = super().check(value, num_devices)
    if problem is None and value % num_devices:
      return (
        f"must be divisible by the number of devices ({num_devices}); use a multiple of "
        f"{num_devices}."
      )
    return problem


@dataclasses.dataclass(frozen=True)
class Float(Constraint):
  """A finite int or float (not a bool) within bounds; `*_open` excludes the bound."""

  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False

  def check(self, value, num_devices):
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
      above = self.low is None or (value > self.low if self.low_open else value >= self.low)
      below = self.high is None or (value < self.high if self.high_open else value <= self.high)
      if above and below:
        return None
    interval = _interval(self.low, self.high, self.low_open, self.high_open)
    return self.problem(f"must be a finite number {interval}")


@dataclasses.dataclass(frozen=True)
class Bool(Constraint):
  def check(self, value, num_devices):
    return None if isinstance(value, bool) else self.problem("must be True or False")


@dataclasses.dataclass(frozen=True)
class Choice(Constraint):
  """A name in `names` (a registry or a tuple)."""

  names: Collection[str] = ()

  def check(self, value, num_devices):
    if isinstance(value, str) and value in self.names:
      return None
    return self.problem(f"must be one of {', '.join(self.names)}")


@dataclasses.dataclass(frozen=True)
class Text(Constraint):
  """A string (non-empty unless `empty`)."""

  empty: bool = True

  def check(self, value, num_devices):
    if isinstance(value, str) and (self.empty or value):
      return None
    return self.problem("must be a string" if self.empty else "must be a non-empty string")


@dataclasses.dataclass(frozen=True)
class Lengths(Constraint):
  """Padded lengths: a non-empty, strictly increasing sequence of ints ≥ 1."""

  def check(self, value, num_devices):
    if (
      isinstance(value, tuple | list)
      and value
      and all(_is_int(v) and v >= 1 for v in value)
      and all(a < b for a, b in itertools.pairwise(value))
    ):
      return None
    return self.problem("must be a non-empty, strictly increasing tuple of ints ≥ 1")


@dataclasses.dataclass(frozen=True)
class Splits(Constraint):
  """Distinct split names that include `required`."""

  required: str = "validation"

  def check(self, value, num_devices):
    if (
      isinstance(value, tuple | list)
      and all(isinstance(v, str) for v in value)
      and len(set(value)) == len(value)
      and self.required in value
    ):
      return None
    return self.problem(f"must be a tuple of distinct split names including {self.required!r}")


@dataclasses.dataclass(frozen=True)
class DataDir(Constraint):
  """A directory, or a path one can be created at; nothing is created here."""

  def check(self, value, num_devices):
    if not isinstance(value, str):
      return self.problem("must be a path")
    if not value:
      return None
    path = os.path.abspath(os.path.expanduser(value))
    if os.path.exists(path):
      return None if os.path.isdir(path) else self.problem("is a file, not a directory")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
      ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
      return self.problem(f"cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
      return self.problem(f"cannot be created: {ancestor} is not writable")
    return None


@dataclasses.dataclass(frozen=True)
class Languages(Constraint):
  """ "" or `xx-yy`: two lower-case language codes of 2–3 letters."""

  def check(self, value, num_devices):
    if isinstance(value, str) and (not value or re.fullmatch(r"[a-z]{2,3}-[a-z]{2,3}", value)):
      return None
    return self.problem("must be '' or source-target language codes such as 'en-de'")


@dataclasses.dataclass(frozen=True)
class OptionalFile(Constraint):
  """An existing file, or "" for none."""

  def check(self, value, num_devices):
    if isinstance(value, str) and (not value or os.path.isfile(value)):
      return None
    return self.problem("must be an existing file")


POSITIVE = Int(low=1)
NON_NEGATIVE = Int(low=0)


def field(constraint: Constraint, default: Any, doc: str) -> Any:
  """A config key: its values must satisfy `constraint`; `doc` says what it means."""
  return dataclasses.field(default=default, metadata={CONSTRAINT: constraint, DOC: doc})


def section(cls: type, doc: str) -> Any:
  """A config subsection declared by the dataclass `cls`, its fields' defaults by default."""
  return dataclasses.field(default_factory=cls, metadata={SECTION: cls, DOC: doc})


def _declared(cls: type) -> list[dataclasses.Field]:
  """The fields of `cls` that are config keys or subsections (not derived values)."""
  return [f for f in dataclasses.fields(cls) if CONSTRAINT in f.metadata or SECTION in f.metadata]


def keys(cls: type, prefix: str = "") -> dict[str, dataclasses.Field]:
  """`{prefix + dotted key: field}` of every key of `cls` and of its subsections."""
  out = {}
  for f in _declared(cls):
    if SECTION in f.metadata:
      out.update(keys(f.metadata[SECTION], f"{prefix}{f.name}."))
    else:
      out[f"{prefix}{f.name}"] = f
  return out


def constraints(cls: type, prefix: str = "") -> dict[str, Constraint]:
  """`{dotted key: constraint}` of `cls`'s keys."""
  return {key: f.metadata[CONSTRAINT] for key, f in keys(cls, prefix).items()}


def defaults(cls: type) -> ml_collections.ConfigDict:
  """The section `cls` as a config holding every key's default."""
  config = ml_collections.ConfigDict()
  for f in _declared(cls):
    config[f.name] = defaults(f.metadata[SECTION]) if SECTION in f.metadata else f.default
  return config


T = TypeVar("T")


def parse(cls: type[T], node: Any, prefix: str = "", num_devices: int = 1) -> T:
  """The section `cls` holding `node`'s values (a ConfigDict or a mapping); a key `node`
  lacks (a config stored before the key existed) takes its default.

  Raises:
    ConfigError: `node` holds a key `cls` does not declare, or a value its constraint
      refuses; the message names the key, the value and what would be valid.
  """
  if isinstance(node, ml_collections.ConfigDict):
    node = node.to_dict()
  node = dict(node or {})
  values = {}
  for f in _declared(cls):
    key = f"{prefix}{f.name}"
    if SECTION in f.metadata:
      values[f.name] = parse(f.metadata[SECTION], node.pop(f.name, {}), f"{key}.", num_devices)
      continue
    value = node.pop(f.name, f.default)
    value = tuple(value) if isinstance(value, list) else value
    problem = f.metadata[CONSTRAINT].check(value, num_devices)
    if problem is not None:
      raise ConfigError(f"{key}={value!r} {problem}")
    values[f.name] = value
  for name, value in node.items():
    raise ConfigError(
      f"{prefix}{name}={value!r} is not a config key; remove it, or declare it as a field of "
      f"{cls.__module__}.{cls.__qualname__}."
    )
  return cls(**values)


def reference(cls: type, prefix: str = "") -> list[tuple[str, Any, str, str]]:
  """`(dotted key, default, constraint, doc)` of every key of `cls`, in declaration order."""
  rows = []
  for key, f in keys(cls, prefix).items():
    constraint = f.metadata[CONSTRAINT]
    rows.append((key, f.default, constraint.describe(), f.metadata[DOC]))
  return rows
