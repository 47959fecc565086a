"""Human translations en→X from the LibreOffice localisation packages of Debian 12.

Two sources, both written by LibreOffice's translators (translations.documentfoundation.org):

  * UI strings: the gettext catalogs of `libreoffice-l10n-X`, English msgid → msgstr.
  * Help pages: `libreoffice-help-en-us` and `libreoffice-help-X` ship the same HTML pages
    whose paragraphs carry stable ids (`par_id…`, `hd_id…`), aligned by (page, id).

The `.deb` files are read as they are (ar + tar, no dpkg) from TFDS's manual directory,
pinned to one package version so that a build is reproducible; `fetch` downloads them
with apt-get on a Debian 12 system.

Cleaning, in this order (each drop is counted and logged):
  1. text: accelerators out (see `l10n_text`), markup and entities resolved, spaces collapsed;
  2. `empty`: source or target empty (an untranslated catalog entry has an empty msgstr,
     an image-only help paragraph has no text); `broken_embed`: a help paragraph that
     shows the help compiler's "[text/….xhp#id not found]." instead of embedded text;
  3. `untranslated`: target equals the source, or has the same words up to case and
     punctuation ("Size:" → "Size :"), or, for a target language written in its own
     script (ko), has no letter of that script;
  4. `duplicate`: a (source, target) pair seen before;
  5. `other_target`: a source translated in several ways keeps its most frequent target
     (ties: the smallest string), so that the mapping is a function of the source.

Plural messages: the singular msgid pairs with the form the catalog uses for n=1 and
msgid_plural with the form for n=2 (de, fr: msgstr[1]; ko, vi have one form, msgstr[0]).
Forms for other n (e.g. Slavic "many") are not paired.

Splits come from the first 8 bytes of sha256(source) mod 100: 0-1 test, 2-3 validation,
the rest train, so a sentence never crosses splits, and the same English sentence lands
in the same split in every language pair.

Measured with 4:7.4.7-1+deb12u14 (train / validation / test pairs; UI + help of the total):
  en-de 43,666 / 882 / 950 (16,957 + 28,541); en-fr 42,218 / 852 / 917 (17,002 + 26,985);
  en-ko 26,848 / 547 / 591 (13,139 + 14,847); en-vi 20,159 / 412 / 439 (7,495 + 13,515).
"""

import collections
import dataclasses
import hashlib
import logging
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Iterator
from typing import ClassVar

import tensorflow_datasets as tfds

from attn_research.data.datasets import debian_packages, l10n_text
from attn_research.errors import ConfigError

PINNED_VERSION = "4:7.4.7-1+deb12u14"
HELP_SOURCE_PACKAGE = "libreoffice-help-en-us"
# Percent of the sha256 space of sources, in the order the ranges are assigned.
SPLIT_PERCENT = {"test": 2, "validation": 2, "train": 96}

_RESOURCE_DIR = "usr/lib/libreoffice/program/resource/{}/LC_MESSAGES/"
_HELP_DIR = "usr/share/libreoffice/help/{}/text/"
_BROKEN_EMBED = re.compile(r"\[text/\S+ not found\]")


@dataclasses.dataclass(eq=False)
class DebianL10nConfig(tfds.core.BuilderConfig):
  """en→`language`, from the packages `libreoffice-{l10n,help}-<package_suffix>`.

  Attributes:
    language: directory name of the language in the packages ("de", "pt-BR").
    package_suffix: Debian's name for it ("de", "pt-br").
    script: regex matching a letter of the target's own script; "" for Latin scripts.
  """

  language: str = ""
  package_suffix: str = ""
  script: str = ""

  @property
  def l10n_package(self) -> str:
    return f"libreoffice-l10n-{self.package_suffix}"

  @property
  def help_package(self) -> str:
    return f"libreoffice-help-{self.package_suffix}"

  @property
  def packages(self) -> dict[str, str]:
    """Package → pinned version, in the order they are fetched."""
    names = (self.l10n_package, HELP_SOURCE_PACKAGE, self.help_package)
    return dict.fromkeys(names, PINNED_VERSION)


CONFIGS: tuple[DebianL10nConfig, ...] = (
  DebianL10nConfig(name="en-de", language="de", package_suffix="de"),
  DebianL10nConfig(name="en-fr", language="fr", package_suffix="fr"),
  DebianL10nConfig(name="en-ko", language="ko", package_suffix="ko", script=r"[\uac00-\ud7a3]"),
  DebianL10nConfig(name="en-vi", language="vi", package_suffix="vi"),
)


def _config(name: str) -> DebianL10nConfig:
  for config in CONFIGS:
    if config.name == name:
      return config
  raise ConfigError(
    f"debian_l10n has no config {name!r}; use one of {', '.join(c.name for c in CONFIGS)}."
  )


def fetch_command(config_name: str) -> list[str]:
  """The `apt-get download` argv that fetches the config's packages at the pinned version."""
  return debian_packages.apt_get_download(_config(config_name).packages)


def _fetch_hint(config_name: str, manual_dir: str | os.PathLike) -> str:
  directory = shlex.quote(os.fspath(manual_dir))
  return f"mkdir -p {directory} && cd {directory} && {shlex.join(fetch_command(config_name))}"


def fetch(config_name: str, manual_dir: str | os.PathLike) -> None:
  """Downloads the config's packages into `manual_dir` (needs Debian 12's apt sources)."""
  command = fetch_command(config_name)
  os.makedirs(manual_dir, exist_ok=True)
  try:
    subprocess.run(command, cwd=manual_dir, check=True)
  except FileNotFoundError as e:
    raise ConfigError(
      f"apt-get not found; run `{shlex.join(command)}` on a Debian 12 system and copy the "
      f".deb files into {manual_dir}."
    ) from e
  except subprocess.CalledProcessError as e:
    raise ConfigError(
      f"`{shlex.join(command)}` failed (exit {e.returncode}); enable Debian 12 (bookworm) "
      f"and bookworm-security apt sources, or copy the .deb files into {manual_dir}."
    ) from e
  check_manual_dir(config_name, manual_dir)


def check_manual_dir(config_name: str, manual_dir: str | os.PathLike) -> None:
  """Raises `ConfigError` with the fetch command unless every pinned `.deb` is there."""
  problems = debian_packages.package_problems(manual_dir, _config(config_name).packages)
  if problems:
    raise ConfigError(
      f"debian_l10n/{config_name}: {'; '.join(problems)} in {manual_dir}; fetch them with: "
      f"{_fetch_hint(config_name, manual_dir)} (or pass --fetch to experiments.data or "
      "experiments.reproduce)"
    )


@dataclasses.dataclass(frozen=True)
class Pair:
  """A cleaned (source, target) pair and where it comes from."""

  source: str
  target: str
  origin: str


def ui_pairs(catalog_name: str, catalog: l10n_text.Catalog) -> Iterator[Pair]:
  """Every message of a catalog as cleaned pairs (plurals: see the module docstring)."""
  singular, plural = catalog.plural(1), catalog.plural(2)
  for entry in catalog.entries:
    underscores = "|" in entry.context or entry.context == "stock"  # GTK .ui strings.
    origin = f"ui:{catalog_name}:{entry.context}"
    forms = [(entry.msgid, singular, origin)]
    if entry.msgid_plural:
      forms.append((entry.msgid_plural, plural, origin + "#plural"))
    for msgid, form, where in forms:
      msgstr = entry.msgstr[form] if form < len(entry.msgstr) else ""
      yield Pair(
        l10n_text.clean_ui(msgid, underscores), l10n_text.clean_ui(msgstr, underscores), where
      )


def help_pairs(
  source_pages: dict[str, bytes], target_pages: dict[str, bytes], drops: collections.Counter
) -> Iterator[Pair]:
  """Paragraphs of the same page and id; counts ids without a partner in `drops`."""
  for path, page in source_pages.items():
    other = target_pages.get(path)
    source = l10n_text.read_help_page(page.decode("utf-8"))
    if other is None:
      drops["unaligned"] += len(source.paragraphs)
      continue
    target = l10n_text.read_help_page(other.decode("utf-8"))
    ambiguous = source.ambiguous | target.ambiguous
    drops["ambiguous_id"] += len(ambiguous)
    for seg_id, text in source.paragraphs.items():
      if seg_id in ambiguous:
        continue
      if seg_id not in target.paragraphs:
        drops["unaligned"] += 1
        continue
      yield Pair(text, target.paragraphs[seg_id], f"help:{path}#{seg_id}")


def _words(text: str) -> list[str]:
  return re.findall(r"[^\W\d_]+", text.casefold())


def select_pairs(
  candidates: Iterable[Pair], script: str = ""
) -> tuple[list[Pair], collections.Counter]:
  """Applies the cleaning rules of the module docstring.

  Returns:
    the kept pairs, one per source, in the order of their first occurrence, with the
    origin of that occurrence; and rule → number of candidates it dropped (for
    `other_target`: of distinct pairs).
  """
  drops: collections.Counter = collections.Counter()
  targets: dict[str, collections.Counter[str]] = {}
  origins: dict[tuple[str, str], str] = {}
  script_letter = re.compile(script) if script else None
  for pair in candidates:
    if not pair.source or not pair.target:
      drops["empty"] += 1
    elif _BROKEN_EMBED.search(pair.source) or _BROKEN_EMBED.search(pair.target):
      drops["broken_embed"] += 1
    elif (
      pair.source == pair.target
      or _words(pair.source) == _words(pair.target)
      or (script_letter and not script_letter.search(pair.target))
    ):
      drops["untranslated"] += 1
    else:
      if (pair.source, pair.target) in origins:
        drops["duplicate"] += 1
      origins.setdefault((pair.source, pair.target), pair.origin)
      targets.setdefault(pair.source, collections.Counter())[pair.target] += 1
  kept = []
  for source, counts in targets.items():
    target = min(counts, key=lambda t: (-counts[t], t))
    if len(counts) > 1:
      drops["other_target"] += len(counts) - 1
    kept.append(Pair(source, target, origins[source, target]))
  return kept, drops


def build_pairs(
  config_name: str, manual_dir: str | os.PathLike
) -> tuple[list[Pair], collections.Counter]:
  """Reads the config's packages from `manual_dir` and returns `select_pairs`' result."""
  config = _config(config_name)
  check_manual_dir(config_name, manual_dir)

  def files(package: str, prefix: str) -> dict[str, bytes]:
    path = os.path.join(manual_dir, debian_packages.deb_filename(package, PINNED_VERSION))
    return debian_packages.data_files(path, prefix)

  drops: collections.Counter = collections.Counter()
  resource_dir = _RESOURCE_DIR.format(config.language)
  catalogs = files(config.l10n_package, resource_dir)
  if not catalogs:
    raise ConfigError(
      f"{config.l10n_package} has no catalogs under /{resource_dir}; set the config's "
      f"language to the package's resource directory name."
    )
  candidates: list[Pair] = []
  for path, data in catalogs.items():
    if path.endswith(".mo"):
      name = path.removeprefix(resource_dir)
      candidates.extend(ui_pairs(name, l10n_text.read_mo(data, name)))
  source_dir, target_dir = _HELP_DIR.format("en-US"), _HELP_DIR.format(config.language)
  source_pages = files(HELP_SOURCE_PACKAGE, source_dir)
  target_pages = files(config.help_package, target_dir)
  if not target_pages:
    raise ConfigError(
      f"{config.help_package} has no pages under /{target_dir}; set the config's language "
      f"to the package's help directory name."
    )
  candidates.extend(
    help_pairs(
      {
        "text/" + p.removeprefix(source_dir): d
        for p, d in source_pages.items()
        if p.endswith(".html")
      },
      {"text/" + p.removeprefix(target_dir): d for p, d in target_pages.items()},
      drops,
    )
  )
  kept, selected_drops = select_pairs(candidates, config.script)
  return kept, drops + selected_drops


def split_of(source: str) -> str:
  """Split of a source sentence: a fixed range of the first 8 bytes of its sha256."""
  bucket = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 100
  for split, percent in SPLIT_PERCENT.items():
    if bucket < percent:
      return split
    bucket -= percent
  raise AssertionError("SPLIT_PERCENT must add up to 100.")


def _instructions() -> str:
  lines = [
    "Download the pinned packages of your config with apt-get on Debian 12 (bookworm, with",
    "bookworm-security) into the manual directory, <data_dir>/downloads/manual/ by default:",
    "",
  ]
  lines += [f"  debian_l10n/{c.name}: {shlex.join(fetch_command(c.name))}" for c in CONFIGS]
  return "\n".join(lines)


class DebianL10n(tfds.core.GeneratorBasedBuilder):
  """TFDS builder for debian_l10n: reads pinned `.deb` files from the manual directory."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {
    "1.0.0": f"LibreOffice {PINNED_VERSION} UI catalogs and help pages, en-de/fr/ko/vi."
  }
  BUILDER_CONFIGS: ClassVar[list[DebianL10nConfig]] = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions()

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        f"English → {config.language} human translations from LibreOffice's localisation: "
        f"UI strings (gettext catalogs) and help paragraphs aligned by page and id, read "
        f"from the Debian 12 packages {', '.join(f'{p}={v}' for p, v in config.packages.items())}. "
        f"Accelerators and markup removed; empty, untranslated and duplicate pairs dropped; "
        f"one target per source (the most frequent); split by sha256 of the source "
        f"({'/'.join(f'{s} {p}%' for s, p in SPLIT_PERCENT.items())})."
      ),
      features=tfds.features.FeaturesDict(
        {
          "source": tfds.features.Text(),
          "target": tfds.features.Text(),
          "origin": tfds.features.Text(),
        }
      ),
      supervised_keys=("source", "target"),
      homepage=f"https://packages.debian.org/bookworm/{config.l10n_package}",
    )

  def download_and_prepare(
    self,
    *,
    download_dir: str | os.PathLike | None = None,
    download_config: tfds.download.DownloadConfig | None = None,
    **kwargs,
  ) -> None:
    """Checks the `.deb` files first: TFDS writes its folders before `_split_generators`."""
    config = download_config or tfds.download.DownloadConfig()
    if tfds.download.GenerateMode(config.download_mode).overwrite_dataset or not self.is_prepared():
      # Where TFDS looks for them, see `DatasetBuilder._make_download_manager`.
      manual_dir = config.manual_dir or os.path.join(
        download_dir or self.data_dir_root / "downloads", "manual"
      )
      check_manual_dir(self.builder_config.name, manual_dir)
    super().download_and_prepare(
      download_dir=download_dir, download_config=download_config, **kwargs
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    pairs, drops = build_pairs(self.builder_config.name, dl_manager.manual_dir)
    logging.info(
      "debian_l10n/%s: %d pairs; dropped %s", self.builder_config.name, len(pairs), dict(drops)
    )
    splits: dict[str, list[Pair]] = {name: [] for name in SPLIT_PERCENT}
    for pair in pairs:
      splits[split_of(pair.source)].append(pair)
    return {name: self._generate_examples(split) for name, split in splits.items()}

  def _generate_examples(self, pairs: list[Pair]):
    for pair in pairs:
      key = hashlib.sha256(pair.source.encode("utf-8")).hexdigest()
      yield key, {"source": pair.source, "target": pair.target, "origin": pair.origin}
