"""Constraints on config values, and the config dataclasses' fields that carry them.

A model sub-config (`AttentionConfig`, `EncoderConfig`, `DecoderConfig`) declares each of
its keys with `field(constraint, default)`; `attn_research.config_checks` collects them
with `of(cls, prefix)` into its one table, beside the keys no module owns. So a new
option is declared, checked and used in one module.
"""

import dataclasses
import itertools
import math
import numbers
import os
import re
from collections.abc import Collection
from typing import Any

CONSTRAINT = "constraint"  # the dataclass field metadata key


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


def field(constraint: Constraint, default: Any = dataclasses.MISSING) -> Any:
  """A dataclass field whose values must satisfy `constraint`."""
  return dataclasses.field(default=default, metadata={CONSTRAINT: constraint})


def of(cls: type, prefix: str) -> dict[str, Constraint]:
  """`{prefix + field name: constraint}` of a config dataclass's fields."""
  return {f"{prefix}{f.name}": f.metadata[CONSTRAINT] for f in dataclasses.fields(cls)}
