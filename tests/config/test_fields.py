"""Config fields: one declaration gives a key's default, its check, its typed value and its
line in the reference."""

import dataclasses

import ml_collections
import pytest

from attn_research.config import fields
from attn_research.config.fields import POSITIVE, Bool, Choice, Float, field, section
from attn_research.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Inner:
  size: int = field(POSITIVE, 4, "units")
  kind: str = field(Choice(names=("a", "b")), "a", "a | b")


@dataclasses.dataclass(frozen=True)
class Outer:
  rate: float = field(Float(low=0, low_open=True), 0.5, "a rate")
  inner: Inner = section(Inner, "the inner part")
  flag: bool = field(Bool(), False, "a switch")
  derived: int = 0  # not a config key: set by code, not by configs


def test_defaults_keys_and_constraints_come_from_the_fields():
  config = fields.defaults(Outer)
  assert isinstance(config, ml_collections.ConfigDict)
  assert config.to_dict() == {"rate": 0.5, "inner": {"size": 4, "kind": "a"}, "flag": False}
  assert list(fields.keys(Outer)) == ["rate", "inner.size", "inner.kind", "flag"]
  assert fields.constraints(Outer, "x.")["x.inner.size"] is POSITIVE


def test_parse_fills_absent_keys_with_defaults_and_types_sections():
  parsed = fields.parse(Outer, {"rate": 2, "inner": {"kind": "b"}})
  assert parsed == Outer(rate=2, inner=Inner(size=4, kind="b"), flag=False)
  assert fields.parse(Outer, {}) == Outer()
  assert fields.parse(Inner, ml_collections.ConfigDict({"size": 7})).size == 7
  assert fields.parse(Outer, {"inner": {"size": 3}}).inner == Inner(size=3)


@pytest.mark.parametrize(
  "values, message",
  [
    ({"rate": 0.0}, "x.rate=0.0 must be a finite number > 0."),
    ({"inner": {"kind": "c"}}, "x.inner.kind='c' must be one of a, b."),
    ({"flag": 1}, "x.flag=1 must be True or False."),
    (
      {"inner": {"sise": 3}},
      "x.inner.sise=3 is not a config key; remove it, or declare it as a field of "
      f"{__name__}.Inner.",
    ),
    ({"derived": 3}, "x.derived=3 is not a config key;"),
  ],
)
def test_parse_names_the_key_the_value_and_the_fix(values, message):
  with pytest.raises(ConfigError) as error:
    fields.parse(Outer, values, "x.")
  assert str(error.value).startswith(message)


def test_reference_rows_say_default_valid_values_and_meaning():
  rows = fields.reference(Outer)
  assert rows[0] == ("rate", 0.5, "must be a finite number > 0.", "a rate")
  assert rows[2] == ("inner.kind", "a", "must be one of a, b.", "a | b")
