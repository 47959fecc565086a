"""IWSLT'15 English–Vietnamese (TED talks): the Stanford NMT release that tensorflow/nmt uses.

Luong & Manning's preprocessed files are read from TFDS's manual directory, not downloaded
(the package's own builders build offline). The splits follow tensorflow/nmt's en-vi
setup: train, validation = tst2012, test = tst2013.

The files come tokenised, one sentence per line, with Moses's XML escapes (`&apos;`,
`&quot;`, `&amp;`, …). They are unescaped (sacremoses, the inverse of Moses's escaping), so
that the text is plain like every other dataset here: the Moses tokenizer, and sacreBLEU's
13a for `&apos;`, would otherwise cut `&apos;s` into `& apos ; s`. Unescaping works inside
tokens, so whitespace tokenisation (the `word` level) keeps the release's token boundaries.

Every line pair is kept, empty ones included, so that example i is line i of both files;
the training pipeline drops pairs with an empty source.
"""

from collections.abc import Iterator
from typing import ClassVar

import sacremoses
import tensorflow_datasets as tfds
from etils import epath

from attn_research.errors import ConfigError

URL = "https://nlp.stanford.edu/projects/nmt/data/iwslt15.en-vi/"
SPLIT_FILES = {"train": "train", "validation": "tst2012", "test": "tst2013"}
LANGUAGES = ("en", "vi")
FILES = tuple(f"{stem}.{lang}" for stem in SPLIT_FILES.values() for lang in LANGUAGES)


def check_manual_dir(manual_dir: epath.PathLike) -> dict[str, epath.Path]:
  """File name → path of the six release files, or a ConfigError saying what to put where."""
  manual_dir = epath.Path(manual_dir)
  missing = [name for name in FILES if not (manual_dir / name).exists()]
  if missing:
    raise ConfigError(
      f"iwslt15 needs {', '.join(missing)} in {manual_dir} (TFDS's manual dir, "
      f"<dataset.data_dir>/downloads/manual): download {', '.join(FILES)} from {URL} there."
    )
  return {name: manual_dir / name for name in FILES}


def read_lines(path: epath.Path) -> list[str]:
  """Lines split at "\\n" only (not at the other separators of `str.splitlines`, which would
  shift the alignment), stripped of surrounding whitespace and unescaped."""
  text = path.read_bytes().decode("utf-8")
  if text.endswith("\n"):
    text = text[:-1]
  unescape = sacremoses.MosesDetokenizer().unescape_xml
  return [unescape(line.strip()) for line in text.split("\n")] if text else []


class Iwslt15Config(tfds.core.BuilderConfig):
  """A translation direction, named `source-target`."""

  def __init__(self, source: str, target: str):
    super().__init__(name=f"{source}-{target}")
    self.source = source
    self.target = target


class Iwslt15(tfds.core.GeneratorBasedBuilder):
  """TFDS builder for IWSLT'15 En–Vi from the Stanford release in the manual dir."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Stanford release, XML escapes undone."}
  BUILDER_CONFIGS: ClassVar[list[Iwslt15Config]] = [
    Iwslt15Config("en", "vi"),
    Iwslt15Config("vi", "en"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"Download {', '.join(FILES)} from {URL} into the manual dir."

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        "IWSLT'15 English–Vietnamese TED talk transcripts, tokenised by Luong & Manning "
        "(2015); about 133K training pairs, tst2012 as validation and tst2013 as test."
      ),
      features=tfds.features.FeaturesDict(
        {"source": tfds.features.Text(), "target": tfds.features.Text()}
      ),
      supervised_keys=("source", "target"),
      homepage="https://nlp.stanford.edu/projects/nmt/",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError:  # TFDS's own complaint about a missing or empty manual dir.
      manual_dir = dl_manager.download_dir / "manual"
    files = check_manual_dir(manual_dir)
    config = self.builder_config
    return {
      split: self._generate_examples(
        files[f"{stem}.{config.source}"], files[f"{stem}.{config.target}"]
      )
      for split, stem in SPLIT_FILES.items()
    }

  def _generate_examples(self, source_path: epath.Path, target_path: epath.Path) -> Iterator:
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
      raise ConfigError(
        f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; "
        f"they must be line-aligned: download both again from {URL}."
      )
    for i, (source, target) in enumerate(zip(sources, targets, strict=True)):
      yield i, {"source": source, "target": target}
