r"""Translates raw text with a trained run: one line in, one detokenised line out.

  echo "Open the file" | python -m experiments.translate --workdir=runs/l10n_en_de
  python -m experiments.translate --workdir=runs/l10n_en_de --input=doc.en --output=doc.de \
      [--checkpoint=best|latest|average] [--config.decode.beam_size=5 ...] [--attention=doc.jsonl] \
      [--truncate]
  python -m experiments.translate --workdirs=runs/a,runs/b,runs/c < doc.en   # an ensemble

Reads --input (a file, `.gz` too, or `-` for stdin) lazily, decodes it in batches of
similar length in the run's padded shapes and writes the translations in input order to
--output (`-`: stdout, flushed every chunk of 16 batches; a file is written under a
temporary name and renamed when complete). An empty line gives an empty line. A line
longer than the run's largest source bucket is decoded in a larger shape (a multiple of
that bucket, compiled once per multiple); a `location`-attention model, whose weights fix
the longest source, refuses it unless --truncate cuts such lines to the largest bucket.
--attention writes one JSON line per input line: source and target tokens and the
attention weights. The config is the run's own; only `decode.*` and `eval.*` (e.g.
`eval.batch_size`) may be overridden. --workdirs decodes several runs as an ensemble:
each step's probabilities are the mean of the runs' (their vocabularies must be equal),
with the first run's config and shapes. A progress bar goes to stderr.
"""

import contextlib
import gzip
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, BinaryIO

from absl import app, flags
from ml_collections import config_flags

from attn_research.errors import ConfigError
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_WORKDIRS = flags.DEFINE_list(
  "workdirs",
  None,
  "Instead of --workdir: runs to decode as an ensemble (their step probabilities averaged; "
  "the first run's config sets the search and shapes).",
)
_CHECKPOINT = flags.DEFINE_enum(
  "checkpoint",
  "best",
  ["best", "latest", "average"],
  "Lowest-validation-perplexity, latest, or averaged (experiments.average) checkpoint.",
)
_INPUT = flags.DEFINE_string("input", "-", "Text to translate, one sentence per line; - = stdin.")
_OUTPUT = flags.DEFINE_string("output", "-", "Where the translations go; - = stdout.")
_ATTENTION = flags.DEFINE_string(
  "attention", "", "Also write each line's tokens and attention weights here (JSON lines)."
)
_TRUNCATE = flags.DEFINE_bool(
  "truncate",
  False,
  "Cut lines longer than the largest source bucket instead of decoding them "
  "in a larger shape (needed for location attention).",
)
_CONFIG = config_flags.DEFINE_config_dict(
  "config", cli.stored_run_config(sys.argv), "The run's config.", lock_config=True
)


def _workdirs() -> list[str]:
  if bool(_WORKDIR.value) == bool(_WORKDIRS.value):
    raise ConfigError("Pass --workdir=RUN, or --workdirs=RUN1,RUN2,… for an ensemble.")
  return [_WORKDIR.value] if _WORKDIR.value else _WORKDIRS.value


@contextlib.contextmanager
def _input(path: str) -> Iterator[BinaryIO]:
  if path == "-":
    yield sys.stdin.buffer
    return
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise ConfigError(f"--input={path} is not a file; pass a text file or - for stdin.")
  with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
    yield f


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
  """stdout, or a temporary file renamed to `path` once everything is written."""
  if path in ("", "-"):
    yield sys.stdout
    return
  path = os.path.abspath(os.path.expanduser(path))
  fd, tmp = tempfile.mkstemp(
    dir=os.path.dirname(path), prefix=".tmp-", suffix=os.path.basename(path)
  )
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      yield f
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from tqdm import tqdm

  from attn_research.data.datasets import text
  from attn_research.training import translation

  workdirs = _workdirs()
  translator, steps = translation.load_translator(
    workdirs,
    _CONFIG.value,
    _CHECKPOINT.value,
    keep_attention=bool(_ATTENTION.value),
    truncate=_TRUNCATE.value,
  )
  runs_at = ", ".join(f"{w} at step {s}" for w, s in zip(workdirs, steps, strict=True))
  print(f"Translating with {runs_at} ({_CHECKPOINT.value}).", file=sys.stderr)
  with (
    _input(_INPUT.value) as source,
    _output(_OUTPUT.value) as out,
    _output(_ATTENTION.value) if _ATTENTION.value else contextlib.nullcontext() as attention,
    tqdm(unit=" lines", file=sys.stderr, desc="translate") as progress,
  ):
    lines = text.decode_lines(source, "stdin" if _INPUT.value == "-" else _INPUT.value)
    for index, translation_ in enumerate(translator.translate(lines)):
      out.write(translation_.text + "\n")
      if attention is not None:
        attention.write(translation_.to_json(index) + "\n")
      progress.update()
      if progress.n % translator.batch_size == 0:
        out.flush()
    out.flush()


if __name__ == "__main__":
  cli.run(main)
