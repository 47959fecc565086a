"""The IWSLT'15 builder on tiny files in the Stanford release's format."""

import pathlib

import pytest

from attn_research.data.datasets import BuilderFamily, iwslt15, open_dataset
from attn_research.errors import ConfigError
from tests.conftest import named

FAMILY = BuilderFamily(iwslt15.Iwslt15)

# Tokenised, Moses-escaped, one sentence per line; an empty pair, and a U+2028 inside a line
# (a line break to `str.splitlines`, not to the release).
EN = "it &apos;s {stem} &quot;one&quot;\n\nAT &amp; T {stem}\u2028two\n"
VI = "nó {stem} một\n\n{stem} hai &#91;x&#93;\n"


def write_release(manual_dir: pathlib.Path, skip: str = "") -> None:
  manual_dir.mkdir(parents=True)
  for stem in ("train", "tst2012", "tst2013"):
    for lang, text in (("en", EN), ("vi", VI)):
      if f"{stem}.{lang}" != skip:
        (manual_dir / f"{stem}.{lang}").write_text(text.format(stem=stem), encoding="utf-8")


def test_configs():
  assert FAMILY.configs == ("en-vi", "vi-en")


def test_builds_both_directions(tmp_path):
  write_release(tmp_path / "downloads" / "manual")
  en_vi = open_dataset(named("iwslt15/en-vi", str(tmp_path))).load()
  vi_en = open_dataset(named("iwslt15/vi-en", str(tmp_path))).load()
  for split, stem in (("train", "train"), ("validation", "tst2012"), ("test", "tst2013")):
    pairs = sorted(zip(en_vi[split]["source"], en_vi[split]["target"], strict=True))
    assert pairs == sorted(
      [
        ("", ""),
        (f'it \'s {stem} "one"', f"nó {stem} một"),
        (f"AT & T {stem}\u2028two", f"{stem} hai [x]"),
      ]
    )
    assert sorted(zip(vi_en[split]["target"], vi_en[split]["source"], strict=True)) == pairs


def test_missing_manual_dir_says_where_and_from_where(tmp_path):
  """Our ConfigError, not TFDS's AssertionError about a missing or empty manual dir."""
  manual_dir = tmp_path / "downloads" / "manual"
  with pytest.raises(
    ConfigError, match=rf"train\.en, .*tst2013\.vi in {manual_dir} .*{iwslt15.URL}"
  ):
    open_dataset(named("iwslt15/en-vi", str(tmp_path))).load()


def test_missing_file_is_named(tmp_path):
  write_release(tmp_path / "downloads" / "manual", skip="tst2012.vi")
  with pytest.raises(ConfigError, match=r"iwslt15 needs tst2012\.vi in "):
    open_dataset(named("iwslt15/vi-en", str(tmp_path))).load()


def test_line_counts_must_match(tmp_path):
  manual_dir = tmp_path / "downloads" / "manual"
  write_release(manual_dir)
  (manual_dir / "tst2013.vi").write_text("one line\n", encoding="utf-8")
  with pytest.raises(ConfigError, match=r"tst2013\.en has 3 lines but .*tst2013\.vi has 1;"):
    open_dataset(named("iwslt15/en-vi", str(tmp_path))).load()


def test_read_lines_without_final_newline(tmp_path):
  path = tmp_path / "x.en"
  path.write_text("a &lt;b&gt;\r\n\nc", encoding="utf-8")
  assert iwslt15.read_lines(path) == ["a <b>", "", "c"]
  path.write_text("", encoding="utf-8")
  assert iwslt15.read_lines(path) == []
