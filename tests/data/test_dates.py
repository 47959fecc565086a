import collections
import datetime
import re

import pytest

from attn_research.data import datasets
from attn_research.data.datasets import dates
from tests.conftest import DATES_SIZES, named


def test_two_digit_years_name_one_year():
  """Every format that writes `yy` is unambiguous only over at most 100 years."""
  assert dates.LAST_DATE.year - dates.FIRST_DATE.year + 1 == 100
  fmt = dates.DateFormat("en", "short")
  assert fmt in dates.FORMATS
  assert fmt.format(datetime.date(1950, 3, 5)) == "3/5/50"
  assert fmt.format(datetime.date(2049, 3, 5)) == "3/5/49"


def test_formats_write_what_babel_writes():
  """Each field is formatted once per value of the date part it reads; babel formats
  whole dates. Every 73rd date of the range: all weekdays, months, days and years."""
  from babel import dates as babel_dates

  for fmt in dates.FORMATS:
    for date in dates.all_dates()[::73]:
      babel = babel_dates.format_date(date, format=fmt.pattern, locale=fmt.locale)
      assert fmt.format(date) == fmt.cased(babel), (fmt.name, date)


def test_a_field_of_unknown_date_part_names_the_fix():
  with pytest.raises(ValueError, match=r"fields G, QQQ; add their date parts to _FIELD_PARTS"):
    dates.DateFormat("en", "QQQ y G").format(dates.FIRST_DATE)


def test_every_source_string_has_one_target():
  """Formats every date of the range in every format (≈1.4M strings)."""
  assert dates.check_unambiguous() > 1_000_000


def test_ambiguous_formats_are_detected():
  with pytest.raises(ValueError, match=r"Ambiguous date format: '.*' is"):
    dates.check_unambiguous((dates.DateFormat("en", "short"), dates.DateFormat("es", "d/M/yy")))


def test_built_dataset(dates_data_dir, monkeypatch):
  data = datasets.open_dataset(named("dates", dates_data_dir)).load()
  assert {k: len(v["source"]) for k, v in data.items()} == DATES_SIZES
  sources = [s for split in data.values() for s in split["source"]]
  assert len(set(sources)) == len(sources)  # no source string in two splits
  locales = collections.Counter(data["train"]["locale"])
  assert set(locales) == {"en", "de", "fr", "ko", "ja", "es"}
  assert min(locales.values()) > 4000
  for source, target in zip(
    data["test"]["source"][:200], data["test"]["target"][:200], strict=True
  ):
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", target)
    year = int(target[:4])
    assert dates.FIRST_DATE.year <= year <= dates.LAST_DATE.year
    assert source != target
  # Regenerating gives the same data (fixed seed); TFDS stores a split in its own order.
  monkeypatch.setattr(dates, "SPLIT_SIZES", DATES_SIZES)
  assert sorted(e["source"] for e in dates.generate()["test"]) == sorted(data["test"]["source"])
