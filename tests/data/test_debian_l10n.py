"""debian_l10n: .mo and help parsing, cleaning, and a build from tiny hand-made .deb files."""

import collections
import io
import itertools
import os
import struct
import subprocess
import tarfile

import pytest

from attn_research.data.datasets import debian_l10n, debian_packages, l10n_text
from attn_research.errors import ConfigError

VERSION = debian_l10n.PINNED_VERSION
HEADER_DE = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
HEADER_KO = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=1; plural=0;\n"


def mo_bytes(messages: dict[str, str], header: str = HEADER_DE, order: str = "<") -> bytes:
  """A GNU .mo file: keys `context\\x04msgid[\\x00plural]`, values `msgstr[\\x00…]`."""
  items = sorted({"": header, **messages}.items())
  n = len(items)
  ids_at, strs_at = 28, 28 + 8 * n
  blob, ids, strs = b"", [], []
  base = strs_at + 8 * n
  for table, index in ((ids, 0), (strs, 1)):
    for item in items:
      data = item[index].encode("utf-8")
      table.append((len(data), base + len(blob)))
      blob += data + b"\0"
  head = struct.pack(f"{order}7I", 0x950412DE, 0, n, ids_at, strs_at, 0, 0)
  tables = b"".join(struct.pack(f"{order}2I", *e) for e in ids + strs)
  return head + tables + blob


def tar_xz(files: dict[str, bytes]) -> bytes:
  out = io.BytesIO()
  with tarfile.open(fileobj=out, mode="w:xz") as tar:
    for name, data in files.items():
      info = tarfile.TarInfo("./" + name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return out.getvalue()


def write_deb(directory, package: str, files: dict[str, bytes], version: str = VERSION) -> str:
  """An ar archive of debian-binary, control.tar.xz and data.tar.xz, named as apt-get does."""
  control = f"Package: {package}\nVersion: {version}\nArchitecture: all\nDescription: test\n x\n"
  members = {
    "debian-binary": b"2.0\n",
    "control.tar.xz": tar_xz({"control": control.encode()}),
    "data.tar.xz": tar_xz(files),
  }
  data = b"!<arch>\n"
  for name, content in members.items():
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n"
    data += header.encode("ascii") + content + (b"\n" if len(content) % 2 else b"")
  path = os.path.join(directory, debian_packages.deb_filename(package, version))
  with open(path, "wb") as f:
    f.write(data)
  return path


def page(lang: str, body: str) -> bytes:
  return f'<!DOCTYPE html><html lang="{lang}"><body><div id="DisplayArea">{body}</div></body></html>'.encode()


SWITCH = (
  '<span class="switchinline"><span hidden="true" class="MAC">{mac}\n</span>'
  '<span hidden="true" id="defaulttext_1">{default}</span></span>'
)
EN_PAGE = page(
  "en-US",
  '<h1 id="hd_id1">Adding <a name="x"></a>Exceptions</h1>'
  f'<p id="par_id2" class="paragraph">To undo, press {SWITCH.format(mac="Command", default="Ctrl")}+Z.</p>'
  '<p id="par_id3">Choose <span class="menuitem">Tools - AutoCorrect</span>&nbsp;&amp; more.</p>'
  '<p id="par_id4">twice</p><p id="par_id4">again</p>'
  '<p id="par_id5" class="code">Sub Main</p>'
  '<p id="par_id6"><img src="a.png" alt="x"></p>'
  '<p id="par_id7">LibreOffice</p>'
  '<p id="par_id8">Only in English.</p>'
  '<p id="par_id9">A tilde (~) stays.</p>',
)
DE_PAGE = page(
  "de",
  '<h1 id="hd_id1">Ausnahmen <a name="x"></a>hinzufügen</h1>'
  f'<p id="par_id2" class="paragraph">Zum Rückgängigmachen {SWITCH.format(mac="Befehl", default="Strg")}+Z drücken.</p>'
  '<p id="par_id3">Wählen Sie <span class="menuitem">Extras – AutoKorrektur</span> &amp; mehr.</p>'
  '<p id="par_id4">zweimal</p><p id="par_id4">wieder</p>'
  '<p id="par_id5" class="code">Sub Main</p>'
  '<p id="par_id6"><img src="a.png" alt="x"></p>'
  '<p id="par_id7">LibreOffice</p>'
  '<p id="par_id9">Eine Tilde (~) bleibt.</p>',
)
UI_DE = {
  "stock\x04_Save": "_Speichern",
  "dialog|label\x04Hori_zontal:": "Hori_zontal:",
  "STR_FILE\x04%FILE_NAME was saved to ~Folder": "%FILE_NAME wurde in ~Ordner gespeichert",
  "STR_WORDS\x04$1 word\x00$1 words": "$1 Wort\x00$1 Wörter",
  "STR_EMPTY\x04Not translated yet": "",
  "STR_SAME\x04PDF": "PDF",
  "STR_DRAG\x04Drag & Drop<BR>done": "Ziehen & Ablegen<BR>fertig",
  "STR_MNEMONIC\x04&Print": "&Drucken",
  "STR_A\x04Delete": "Löschen",
  "STR_B\x04~Delete": "Entfernen",
  "STR_C\x04Delete": "Löschen",
  "STR_D\x04Tools - AutoCorrect": "Extras – AutoKorrektur",
}


# TFDS refuses to write an empty split: one message whose source hashes into each split.
FILLERS = {
  split: next(f"Item {i}" for i in itertools.count() if debian_l10n.split_of(f"Item {i}") == split)
  for split in debian_l10n.SPLIT_PERCENT
}


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory) -> str:
  directory = tmp_path_factory.mktemp("downloads") / "manual"
  directory.mkdir()
  resource = "usr/lib/libreoffice/program/resource/de/LC_MESSAGES/"
  messages = UI_DE | {f"F_{s}\x04{item}": f"Eintrag {item[5:]}" for s, item in FILLERS.items()}
  write_deb(directory, "libreoffice-l10n-de", {resource + "sw.mo": mo_bytes(messages)})
  help_page = "usr/share/libreoffice/help/{}/text/swriter/guide/page.html"
  write_deb(directory, "libreoffice-help-en-us", {help_page.format("en-US"): EN_PAGE})
  write_deb(directory, "libreoffice-help-de", {help_page.format("de"): DE_PAGE})
  return str(directory)


def test_read_mo_contexts_plurals_and_byte_orders():
  messages = {"ctx\x04one\x00many": "eins\x00viele", "plain": "schlicht"}
  for order in "<>":
    catalog = l10n_text.read_mo(mo_bytes(messages, order=order))
    assert set(catalog.entries) == {
      l10n_text.MoEntry("ctx", "one", "many", ("eins", "viele")),
      l10n_text.MoEntry("", "plain", "", ("schlicht",)),
    }
    assert (catalog.plural(1), catalog.plural(2)) == (0, 1)
  assert l10n_text.read_mo(mo_bytes({}, header=HEADER_KO)).plural(2) == 0
  with pytest.raises(ConfigError, match=r"not a \.mo file"):
    l10n_text.read_mo(b"\0" * 40, "x.mo")


@pytest.mark.parametrize(
  ("text", "underscores", "expected"),
  [
    ("~Save", False, "Save"),
    ("S~lides:", False, "Slides:"),
    ("Ignore ~~ and '", False, "Ignore ~ and '"),
    ("0 ~ 100, 1~30, 빨강~검정", False, "0 ~ 100, 1~30, 빨강~검정"),
    ("설치(~I)", False, "설치"),
    ("추가(_A)...", True, "추가..."),
    ("_File", True, "File"),
    ("Instit_ution", True, "Institution"),
    ("a __ b", True, "a _ b"),
    ("%FILE_NAME in FILE_NAME", False, "%FILE_NAME in FILE_NAME"),
    ("&Save", False, "Save"),
    ("Drag & Drop, Date&Time, &#1234;", False, "Drag & Drop, Date&Time, &#1234;"),
    ("One<BR><BR>two\n three", False, "One two three"),
    ("%1 of $(ARG1) {0} %PRODUCTNAME", True, "%1 of $(ARG1) {0} %PRODUCTNAME"),
  ],
)
def test_clean_ui(text, underscores, expected):
  assert l10n_text.clean_ui(text, underscores) == expected


def test_read_help_page_drops_hidden_cases_code_and_ambiguous_ids():
  result = l10n_text.read_help_page(EN_PAGE.decode())
  assert result.paragraphs["par_id2"] == "To undo, press Ctrl+Z."
  assert result.paragraphs["par_id3"] == "Choose Tools - AutoCorrect & more."
  assert result.paragraphs["hd_id1"] == "Adding Exceptions"
  assert result.ambiguous == {"par_id4"}
  assert "par_id4" not in result.paragraphs and "par_id5" not in result.paragraphs
  assert result.paragraphs["par_id6"] == ""


def test_ui_pairs_plural_forms():
  de = l10n_text.read_mo(mo_bytes({"S\x04$1 word\x00$1 words": "$1 Wort\x00$1 Wörter"}))
  ko = l10n_text.read_mo(mo_bytes({"S\x04$1 word\x00$1 words": "$1 단어"}, header=HEADER_KO))
  assert [(p.source, p.target) for p in debian_l10n.ui_pairs("a.mo", de)] == [
    ("$1 word", "$1 Wort"),
    ("$1 words", "$1 Wörter"),
  ]
  assert [p.target for p in debian_l10n.ui_pairs("a.mo", ko)] == ["$1 단어", "$1 단어"]


def test_select_pairs_rules():
  def pair(source, target):
    return debian_l10n.Pair(source, target, f"o:{source}:{target}")

  kept, drops = debian_l10n.select_pairs(
    [
      pair("Size:", "Size :"),
      pair("", ""),
      pair("Open", "Öffnen"),
      pair("Open", "Aufmachen"),
      pair("Open", "Öffnen"),
      pair("Close", "Schließen"),
      pair("Cell", "Cell"),
      pair("SUM", "[text/scalc/01/func_sum.xhp#sum not found]."),
    ]
  )
  assert [(p.source, p.target, p.origin) for p in kept] == [
    ("Open", "Öffnen", "o:Open:Öffnen"),
    ("Close", "Schließen", "o:Close:Schließen"),
  ]
  assert drops == {
    "untranslated": 2,
    "empty": 1,
    "broken_embed": 1,
    "duplicate": 1,
    "other_target": 1,
  }
  kept, drops = debian_l10n.select_pairs([pair("Cell", "Cell 1"), pair("Cell", "셀")], "[가-힣]")
  assert [p.target for p in kept] == ["셀"] and drops == {"untranslated": 1}


def test_split_of_is_a_stable_function_of_the_source():
  sources = [f"sentence {i}" for i in range(20_000)]
  splits = collections.Counter(debian_l10n.split_of(s) for s in sources)
  assert 0.015 < splits["test"] / len(sources) < 0.025
  assert 0.015 < splits["validation"] / len(sources) < 0.025
  assert [debian_l10n.split_of(s) for s in sources[:100]] == [
    debian_l10n.split_of(s) for s in sources[:100]
  ]


def test_build_pairs(manual_dir):
  pairs, drops = debian_l10n.build_pairs("en-de", manual_dir)
  got = {p.source: (p.target, p.origin) for p in pairs if p.source not in FILLERS.values()}
  assert got == {
    "Save": ("Speichern", "ui:sw.mo:stock"),
    "%FILE_NAME was saved to Folder": (
      "%FILE_NAME wurde in Ordner gespeichert",
      "ui:sw.mo:STR_FILE",
    ),
    "$1 word": ("$1 Wort", "ui:sw.mo:STR_WORDS"),
    "$1 words": ("$1 Wörter", "ui:sw.mo:STR_WORDS#plural"),
    "Drag & Drop done": ("Ziehen & Ablegen fertig", "ui:sw.mo:STR_DRAG"),
    "Print": ("Drucken", "ui:sw.mo:STR_MNEMONIC"),
    "Delete": ("Löschen", "ui:sw.mo:STR_A"),
    "Tools - AutoCorrect": ("Extras – AutoKorrektur", "ui:sw.mo:STR_D"),
    "Adding Exceptions": ("Ausnahmen hinzufügen", "help:text/swriter/guide/page.html#hd_id1"),
    "To undo, press Ctrl+Z.": (
      "Zum Rückgängigmachen Strg+Z drücken.",
      "help:text/swriter/guide/page.html#par_id2",
    ),
    "Choose Tools - AutoCorrect & more.": (
      "Wählen Sie Extras – AutoKorrektur & mehr.",
      "help:text/swriter/guide/page.html#par_id3",
    ),
    "A tilde (~) stays.": ("Eine Tilde (~) bleibt.", "help:text/swriter/guide/page.html#par_id9"),
  }
  assert drops == {
    "empty": 2,  # STR_EMPTY, par_id6 (an image).
    "untranslated": 3,  # STR_SAME, "Hori_zontal:" once cleaned, par_id7.
    "other_target": 1,  # "Delete" → "Entfernen".
    "duplicate": 1,  # "Delete" → "Löschen" twice.
    "ambiguous_id": 1,  # par_id4.
    "unaligned": 1,  # par_id8.
  }
  assert debian_l10n.build_pairs("en-de", manual_dir) == (pairs, drops)


def test_builder_writes_array_record(manual_dir, tmp_path):
  builder = debian_l10n.DebianL10n(
    data_dir=str(tmp_path), file_format="array_record", config="en-de"
  )
  builder.download_and_prepare(
    download_config=debian_l10n.tfds.download.DownloadConfig(manual_dir=manual_dir)
  )
  assert VERSION in builder.info.description
  rows = {}
  for split, source in builder.as_data_source().items():
    for record in source.__getitems__(range(len(source))):
      text = {k: v.decode() for k, v in record.items()}
      assert debian_l10n.split_of(text["source"]) == split
      rows[text["source"]] = text["target"]
  pairs, _ = debian_l10n.build_pairs("en-de", manual_dir)
  assert rows == {p.source: p.target for p in pairs}
  # Prepared data is reused without the files, but a forced rebuild checks before deleting.
  gone = debian_l10n.tfds.download.DownloadConfig(manual_dir=str(tmp_path / "gone"))
  builder.download_and_prepare(download_config=gone)
  gone.download_mode = debian_l10n.tfds.download.GenerateMode.FORCE_REDOWNLOAD
  with pytest.raises(ConfigError, match="missing libreoffice-l10n-de_"):
    builder.download_and_prepare(download_config=gone)
  assert builder.is_prepared()


def test_missing_packages_name_the_fetch_command(manual_dir, tmp_path):
  command = debian_l10n.fetch_command("en-de")
  assert command == [
    "apt-get",
    "download",
    f"libreoffice-l10n-de={VERSION}",
    f"libreoffice-help-en-us={VERSION}",
    f"libreoffice-help-de={VERSION}",
  ]
  empty = tmp_path / "manual"
  with pytest.raises(
    ConfigError, match=r"missing libreoffice-l10n-de_4%3a7.*cd .*manual && apt-get"
  ):
    debian_l10n.check_manual_dir("en-de", empty)
  # TFDS asserts on a missing manual dir before our check could run; ours must win.
  builder = debian_l10n.DebianL10n(
    data_dir=str(tmp_path), file_format="array_record", config="en-de"
  )
  with pytest.raises(ConfigError, match="apt-get download libreoffice-l10n-de="):
    builder.download_and_prepare()
  assert not list(tmp_path.rglob("*array_record*"))
  with pytest.raises(ConfigError, match="no config 'en-xx'"):
    debian_l10n.fetch_command("en-xx")


def test_other_versions_are_refused(tmp_path):
  write_deb(tmp_path, "libreoffice-l10n-de", {}, version="4:7.0.0-1")
  with pytest.raises(
    ConfigError, match=r"found libreoffice-l10n-de_4%3a7.0.0-1_all.deb, but .*pinned"
  ):
    debian_l10n.check_manual_dir("en-de", tmp_path)
  renamed = write_deb(tmp_path, "libreoffice-help-de", {}, version="4:7.0.0-1")
  os.rename(renamed, tmp_path / debian_packages.deb_filename("libreoffice-help-de", VERSION))
  with pytest.raises(ConfigError, match=r"holds libreoffice-help-de=4:7\.0\.0-1"):
    debian_l10n.check_manual_dir("en-de", tmp_path)


def test_fetch_runs_apt_get_in_the_manual_dir(manual_dir, tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(subprocess, "run", lambda cmd, cwd, check: calls.append((cmd, cwd)))
  debian_l10n.fetch("en-de", manual_dir)
  assert calls == [(debian_l10n.fetch_command("en-de"), manual_dir)]

  def missing(*args, **kwargs):
    raise FileNotFoundError("apt-get")

  monkeypatch.setattr(subprocess, "run", missing)
  with pytest.raises(ConfigError, match="apt-get not found"):
    debian_l10n.fetch("en-de", tmp_path / "new")
  assert (tmp_path / "new").is_dir()
