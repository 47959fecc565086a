"""Human-readable dates in many locales and formats → ISO 8601 (`YYYY-MM-DD`).

The date-format experiment of the lecture notes' attention chapter (seed 000), widened to
six locales with CLDR data through babel: each locale's short / medium / long / full
formats plus custom patterns and case variants. The mapping must be a function of the
source string, which two things could break:

  * two-digit years, so every date lies in a 100-year range (`FIRST_DATE`..`LAST_DATE`)
    and `yy` names exactly one year;
  * numeric formats of different locales that order day and month differently (en
    `M/d/yy` against es `d/M/yy`: "3/5/24" is both 5 March and 3 May), so such formats
    are left out.

`check_unambiguous` proves it by formatting every date of the range in every format and
looking for a string with two targets; the builder runs it before writing anything.
"""

import dataclasses
import datetime
import functools
import re
from collections.abc import Callable
from typing import ClassVar

import babel
import numpy as np
import tensorflow_datasets as tfds
from babel import dates as babel_dates

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
SEED = 20150817
SPLIT_SIZES = {"train": 45_000, "validation": 5_000, "test": 5_000}


@functools.cache
def _locale(code: str) -> babel.Locale:
  return babel.Locale.parse(code)


@functools.cache
def _pattern(code: str, pattern: str) -> babel_dates.DateTimePattern:
  """A CLDR width or LDML pattern parsed once (`format_date` looks it up on every call)."""
  if pattern in ("short", "medium", "long", "full"):
    pattern = babel_dates.get_date_format(pattern, locale=_locale(code)).pattern
  return babel_dates.parse_pattern(pattern)


# The date part each LDML field letter of these formats reads: a field's text depends on
# that part alone, so it is formatted once per value (check_unambiguous formats 1.4 M
# strings: 27.6 s through babel's `apply`, 14.0 s this way, on a 2-core AMD EPYC beside
# other work).
_FIELD_PARTS: dict[str, Callable[[datetime.date], int]] = {
  "y": lambda date: date.year,
  "M": lambda date: date.month,
  "d": lambda date: date.day,
  "E": lambda date: date.weekday(),
}


@functools.cache
def _formatter(code: str, pattern: str) -> Callable[[datetime.date], str]:
  """`date → text` as babel's `format_date(date, pattern, locale)` writes it."""
  parsed, locale = _pattern(code, pattern), _locale(code)
  fields = re.findall(r"%\((\w+)\)s", parsed.format)
  unknown = sorted({field for field in fields if field[0] not in _FIELD_PARTS})
  if unknown:
    raise ValueError(
      f"Date pattern {pattern!r} has fields {', '.join(unknown)}; add their date parts to "
      "_FIELD_PARTS or leave the pattern out of FORMATS."
    )
  template = re.sub(r"%\(\w+\)s", "%s", parsed.format)
  parts = [_FIELD_PARTS[field[0]] for field in fields]
  texts: list[dict[int, str]] = [{} for _ in fields]  # per field: part's value → text

  def format(date: datetime.date) -> str:
    values = []
    for field, part, known in zip(fields, parts, texts, strict=True):
      value = part(date)
      if value not in known:
        known[value] = babel_dates.DateTimeFormat(date, locale)[field]
      values.append(known[value])
    return template % tuple(values)

  return format


_CASES = {"": str, "upper": str.upper, "lower": str.lower}


@dataclasses.dataclass(frozen=True)
class DateFormat:
  """A way to write a date: a CLDR width ("short" … "full") or a custom pattern.

  Attributes:
    locale: CLDR locale code.
    pattern: babel format name or LDML pattern.
    case: "" (as CLDR writes it), "upper" or "lower".
  """

  locale: str
  pattern: str
  case: str = ""

  def format(self, date: datetime.date) -> str:
    return self.cased(_formatter(self.locale, self.pattern)(date))

  def cased(self, text: str) -> str:
    """`text`, as this format writes it, in this format's case."""
    return _CASES[self.case](text)

  @property
  def name(self) -> str:
    return f"{self.locale}:{self.pattern}" + (f":{self.case}" if self.case else "")


_WIDTHS = ("short", "medium", "long", "full")

FORMATS: tuple[DateFormat, ...] = (
  # English: CLDR widths as the textbook data, plus its upper/lower-case variants.
  *(DateFormat("en", w) for w in _WIDTHS),
  DateFormat("en", "full", "upper"),
  DateFormat("en", "medium", "upper"),
  DateFormat("en", "long", "lower"),
  DateFormat("en", "d MMMM y"),
  DateFormat("en", "EEE, MMM d, y"),
  # German.
  *(DateFormat("de", w) for w in _WIDTHS),
  DateFormat("de", "d. MMM y"),
  DateFormat("de", "EEE, d.M.y"),
  DateFormat("de", "long", "upper"),
  # French (short is dd/MM/y: a four-digit year, so it never meets en M/d/yy).
  *(DateFormat("fr", w) for w in _WIDTHS),
  DateFormat("fr", "EEE d MMM y"),
  DateFormat("fr", "full", "lower"),
  # Korean.
  *(DateFormat("ko", w) for w in _WIDTHS),
  DateFormat("ko", "yy년 M월 d일"),
  DateFormat("ko", "y년 MM월 dd일 (E)"),
  # Japanese (CLDR's short and medium are both y/MM/dd).
  *(DateFormat("ja", w) for w in ("short", "long", "full")),
  DateFormat("ja", "y年M月d日(E)"),
  DateFormat("ja", "yy年M月d日"),
  # Spanish: short (d/M/yy) is left out, it collides with en short (M/d/yy).
  *(DateFormat("es", w) for w in ("medium", "long", "full")),
  DateFormat("es", "d-M-y"),
  DateFormat("es", "EEE, d MMM y"),
  DateFormat("es", "full", "upper"),
)


def all_dates() -> list[datetime.date]:
  days = (LAST_DATE - FIRST_DATE).days + 1
  return [FIRST_DATE + datetime.timedelta(days=i) for i in range(days)]


@functools.cache  # ≈1.4M strings: a process that builds the dataset checks them once
def check_unambiguous(formats: tuple[DateFormat, ...] = FORMATS) -> int:
  """Formats every date of the range in every format; raises if a string has two dates.

  Returns:
    the number of distinct source strings.
  """
  seen: dict[str, tuple[datetime.date, DateFormat]] = {}
  dates = all_dates()
  cases: dict[tuple[str, str], list[DateFormat]] = {}  # the case variants of one pattern
  for fmt in formats:
    cases.setdefault((fmt.locale, fmt.pattern), []).append(fmt)
  for (locale, pattern), variants in cases.items():
    plain = DateFormat(locale, pattern)
    for date in dates:
      text = plain.format(date)
      for fmt in variants:
        cased = fmt.cased(text)
        other = seen.setdefault(cased, (date, fmt))
        if other[0] != date:
          raise ValueError(
            f"Ambiguous date format: {cased!r} is {other[0]} in {other[1].name} and {date} "
            f"in {fmt.name}; drop one of the two formats from FORMATS."
          )
  return len(seen)


def generate(seed: int = SEED) -> dict[str, list[dict[str, str]]]:
  """Draws distinct source strings, so that no source is in two splits.

  Returns:
    split name → examples with `source`, `target` (ISO date), `locale` and `format`.
  """
  rng = np.random.default_rng(seed)
  dates = all_dates()
  total = sum(SPLIT_SIZES.values())
  examples, sources = [], set()
  while len(examples) < total:
    date = dates[rng.integers(len(dates))]
    fmt = FORMATS[rng.integers(len(FORMATS))]
    source = fmt.format(date)
    if source in sources:
      continue
    sources.add(source)
    examples.append(
      {"source": source, "target": date.isoformat(), "locale": fmt.locale, "format": fmt.name}
    )
  splits, start = {}, 0
  for name, size in SPLIT_SIZES.items():
    splits[name] = examples[start : start + size]
    start += size
  return splits


class Dates(tfds.core.GeneratorBasedBuilder):
  """TFDS builder for the dates dataset (generated locally; nothing is downloaded)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Six locales, 1950-2049, 45k/5k/5k."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        f"Dates from {FIRST_DATE} to {LAST_DATE} written in {len(FORMATS)} CLDR formats "
        f"(babel {babel.__version__}) of the locales en, de, fr, ko, ja, es, mapped to ISO "
        f"8601. Seed {SEED}; every source string has exactly one target."
      ),
      features=tfds.features.FeaturesDict(
        {
          "source": tfds.features.Text(),
          "target": tfds.features.Text(),
          "locale": tfds.features.Text(),
          "format": tfds.features.Text(),
        }
      ),
      supervised_keys=("source", "target"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Generated from CLDR data shipped with babel.
    check_unambiguous()
    splits = generate()
    return {name: self._generate_examples(examples) for name, examples in splits.items()}

  def _generate_examples(self, examples: list[dict[str, str]]):
    yield from enumerate(examples)
