"""Plain text out of LibreOffice's localisation files: gettext catalogs and help pages.

UI strings carry accelerator markers that are not part of the text: `~` (LibreOffice's own
`.hrc` strings and menus, `~~` is a literal tilde), `_` (GTK `.ui` dialogs, `__` is a
literal underscore), `&` (Windows style, as in `&Save`) and, in CJK translations, a
parenthesised key such as `추가(_A)`. Placeholders (`%1`, `$(ARG1)`, `%PRODUCTNAME`, `{0}`)
are text to a translator and are left as they are, in source and target alike.
"""

import collections
import dataclasses
import gettext
import html.parser
import re
import struct
import unicodedata
from collections.abc import Callable

from attn_research.errors import ConfigError

_MO_MAGIC = 0x950412DE


@dataclasses.dataclass(frozen=True)
class MoEntry:
  """One message of a compiled catalog; `msgstr` has one string per plural form."""

  context: str
  msgid: str
  msgid_plural: str
  msgstr: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Catalog:
  """The messages of a `.mo` file and its plural rule (n → index into `msgstr`)."""

  entries: tuple[MoEntry, ...]
  plural: Callable[[int], int]


def read_mo(data: bytes, name: str = "catalog") -> Catalog:
  """Parses the GNU `.mo` format (either byte order); the header entry is not a message."""
  if len(data) < 20:
    raise ConfigError(f"{name} is not a .mo file (too short); reinstall the package file.")
  for order in "<>":
    if struct.unpack(f"{order}I", data[:4])[0] == _MO_MAGIC:
      break
  else:
    raise ConfigError(f"{name} is not a .mo file (bad magic); reinstall the package file.")
  _, count, ids_at, strs_at = struct.unpack(f"{order}4I", data[4:20])

  def string(table: int, i: int) -> bytes:
    length, offset = struct.unpack(f"{order}2I", data[table + 8 * i : table + 8 * i + 8])
    return data[offset : offset + length]

  raw = [(string(ids_at, i), string(strs_at, i)) for i in range(count)]
  header = dict(
    line.split(":", 1)
    for line in next((s for k, s in raw if k == b""), b"").decode("ascii", "replace").split("\n")
    if ":" in line
  )
  charset = re.search(r"charset=([\w-]+)", header.get("Content-Type", ""))
  encoding = charset.group(1) if charset else "utf-8"
  rule = re.search(r"plural=([^;]+)", header.get("Plural-Forms", ""))
  entries = []
  for key, value in raw:
    if key == b"":
      continue
    context, _, msgid = key.decode(encoding).rpartition("\x04")
    msgid, _, msgid_plural = msgid.partition("\x00")
    entries.append(
      MoEntry(context, msgid, msgid_plural, tuple(value.decode(encoding).split("\x00")))
    )
  return Catalog(tuple(entries), gettext.c2py(rule.group(1) if rule else "n != 1"))


def collapse_space(text: str) -> str:
  """Runs of any Unicode space (newlines, no-break spaces) → one space, ends stripped."""
  return " ".join(text.split())


_CJK_ACCELERATOR = re.compile(r"\s*\(\s*[~_&][^\W_]\s*\)")
_TILDE = re.compile(r"~~|~")
_UNDERSCORE = re.compile(r"__|_(?=[^\s_])")
_AMPERSAND = re.compile(r"(?<![\w&])&(?![^\W_]+;)(?=[^\W_])")
_BREAK_TAG = re.compile(r"<(?:br|p)\s*/?>", re.IGNORECASE)
_INLINE_TAG = re.compile(r"</?(?:a|b|em|i|span|strong|u)(?:\s[^<>]*)?>", re.IGNORECASE)


def _is_cjk(char: str) -> bool:
  return unicodedata.name(char, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA"))


def _tilde(match: re.Match[str]) -> str:
  """`~x` is an accelerator; `~~`, a spaced `~` and ranges (`1~30`, `빨강~검정`) are text."""
  if match.group() == "~~":
    return "~"
  text, at = match.string, match.start()
  before, after = text[at - 1 : at], text[at + 1 : at + 2]
  if not after.isalnum():
    return "~"
  if (before.isdigit() and after.isdigit()) or (before and _is_cjk(before) and _is_cjk(after)):
    return "~"
  return ""


def clean_ui(text: str, underscore_accelerators: bool) -> str:
  """A UI string as displayed: accelerators and line-break tags out, spaces collapsed.

  Args:
    text: msgid or msgstr.
    underscore_accelerators: whether `_` marks an accelerator; true for strings of GTK
      `.ui` dialogs only, elsewhere `_` is part of names such as `%FILE_NAME`.
  """
  text = _CJK_ACCELERATOR.sub("", text)
  text = _TILDE.sub(_tilde, text)
  if underscore_accelerators:
    text = _UNDERSCORE.sub(lambda m: "_" if m.group() == "__" else "", text)
  text = _AMPERSAND.sub("", text)
  text = _BREAK_TAG.sub(" ", text)
  return collapse_space(_INLINE_TAG.sub("", text))


# Elements that hold one translatable paragraph of a help page, by their `id`.
_SEGMENT_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
# Paragraph classes that hold program code rather than prose.
_CODE_CLASSES = frozenset({"code", "codeintable", "smathcode", "bascode", "pycode"})
_VOID_TAGS = frozenset(
  {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _HelpParser(html.parser.HTMLParser):
  """Collects the text of every id-carrying paragraph, leaving out hidden alternatives.

  A switch (`<span class="switchinline">`) holds one hidden element per case with a
  `class` naming the platform or module (MAC, WIN, CALC, …) and a hidden default case
  without one, which help.js shows everywhere else: the classed cases are dropped.
  """

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.stack: list[str] = []
    self.skip_depth: int | None = None
    self.open: list[tuple[int, str, list[str]]] = []
    self.found: list[tuple[str, str]] = []

  def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
    if tag in _VOID_TAGS:
      if tag == "br":
        self.handle_data(" ")
      return
    self.stack.append(tag)
    attr = dict(attrs)
    if self.skip_depth is None and "hidden" in attr and attr.get("class"):
      self.skip_depth = len(self.stack)
    classes = set((attr.get("class") or "").split())
    if tag in _SEGMENT_TAGS and attr.get("id") and not classes & _CODE_CLASSES:
      self.open.append((len(self.stack), attr["id"], []))

  def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
    if tag == "br":
      self.handle_data(" ")

  def handle_endtag(self, tag: str) -> None:
    if tag not in self.stack:
      return  # A stray end tag.
    while self.stack:
      depth = len(self.stack)
      closed = self.stack.pop()
      while self.open and self.open[-1][0] == depth:
        _, seg_id, chunks = self.open.pop()
        self.found.append((seg_id, "".join(chunks)))
      if self.skip_depth is not None and depth <= self.skip_depth:
        self.skip_depth = None
      if closed == tag:
        break

  def handle_data(self, data: str) -> None:
    if self.skip_depth is None:
      for _, _, chunks in self.open:
        chunks.append(data)


@dataclasses.dataclass(frozen=True)
class HelpPage:
  """Paragraph id → text of one help page; ids used more than once are left out."""

  paragraphs: dict[str, str]
  ambiguous: frozenset[str]


def read_help_page(page: str) -> HelpPage:
  """Extracts the paragraphs of a help page, markup and entities resolved to text."""
  parser = _HelpParser()
  parser.feed(page)
  parser.close()
  uses = collections.Counter(seg_id for seg_id, _ in parser.found)
  ambiguous = frozenset(seg_id for seg_id, n in uses.items() if n > 1)
  paragraphs = {i: collapse_space(t) for i, t in parser.found if i not in ambiguous}
  return HelpPage(paragraphs, ambiguous)
