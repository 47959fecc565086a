r"""Translates raw text with a trained run: one line in, one detokenised line out.

  echo "Open the file" | python -m experiments.translate --workdir=runs/l10n_en_de
  python -m experiments.translate --workdir=runs/l10n_en_de --input=doc.en --output=doc.de \
      [--checkpoint=best|latest|average] [--config.decode.beam_size=5 ...] [--attention=doc.jsonl] \
      [--heatmaps=DIR] [--n_best=K] [--truncate]
  python -m experiments.translate --workdirs=runs/a,runs/b,runs/c < doc.en   # an ensemble

Reads --input (a file, `.gz` too, or `-` for stdin) lazily, decodes it in batches of
similar length in the run's padded shapes and writes the translations in input order to
--output (`-`: stdout, flushed every chunk of 16 batches; a file is written under a
temporary name and renamed when complete). An empty line gives an empty line. A line
longer than the run's largest source bucket is decoded in a larger shape (a multiple of
that bucket, compiled once per multiple); a `location`-attention model, whose weights fix
the longest source, refuses it unless --truncate cuts such lines to the largest bucket.
--attention writes one JSON line per input line: source and target tokens and the
attention weights; --heatmaps draws them, one PNG per input line (`DIR/000001.png` for
line 1; none for an empty line). --n_best=K (K ≤ decode.beam_size) writes the K best
translations of each line, best first, on K consecutive lines (an empty line gives K empty
lines), and their beam scores in --attention's `n_best` records. The config is the run's own; only `decode.*` and `eval.*` (e.g.
`eval.batch_size`) may be overridden. --workdirs decodes several runs as an ensemble:
each step's probabilities are the mean of the runs' (their vocabularies must be equal),
with the first run's config and shapes. A progress bar goes to stderr.
"""

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import IO

from absl import app, flags
from ml_collections import config_flags

from attn_research import runs
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
_HEATMAPS = flags.DEFINE_string(
  "heatmaps", "", "Also draw each line's attention as DIR/<line number>.png (a directory)."
)
_N_BEST = flags.DEFINE_integer(
  "n_best", 1, "Translations per line, best first, on consecutive lines (needs beam search).", 1
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


def _lines(path: str) -> Iterator[str]:
  """--input's lines, read lazily (see `text.decode_lines`)."""
  from attn_research.data.datasets import text

  if path == "-":
    return text.decode_lines(sys.stdin.buffer, "stdin")
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise ConfigError(f"--input={path} is not a file; pass a text file or - for stdin.")
  return text.stream_lines(path)


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
  """stdout, or a file that becomes `path` only once everything is written."""
  if path in ("", "-"):
    yield sys.stdout
    return
  with runs.atomic_writer(os.path.expanduser(path)) as f:
    out = io.TextIOWrapper(f, encoding="utf-8")
    yield out
    out.flush()
    out.detach()  # the writer closes the file, after its fsync


def _draw(directory: str, index: int, translation_) -> None:
  from attn_research.evaluation import plots

  plots.save_heatmap(
    os.path.join(directory, f"{index + 1:06d}.png"),
    translation_.attention,
    translation_.source_tokens,
    translation_.target_tokens,
    f"line {index + 1}",
  )


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from tqdm import tqdm

  from attn_research.inference import translation

  workdirs = _workdirs()
  lines = _lines(_INPUT.value)  # a missing file fails before the model loads
  translator, steps = translation.load_translator(
    workdirs,
    _CONFIG.value,
    _CHECKPOINT.value,
    keep_attention=bool(_ATTENTION.value or _HEATMAPS.value),
    truncate=_TRUNCATE.value,
    n_best=_N_BEST.value,
  )
  heatmaps = os.path.expanduser(_HEATMAPS.value)
  if heatmaps:
    os.makedirs(heatmaps, exist_ok=True)
  runs_at = ", ".join(f"{w} at step {s}" for w, s in zip(workdirs, steps, strict=True))
  print(f"Translating with {runs_at} ({_CHECKPOINT.value}).", file=sys.stderr)
  with (
    _output(_OUTPUT.value) as out,
    _output(_ATTENTION.value) if _ATTENTION.value else contextlib.nullcontext() as attention,
    tqdm(unit=" lines", file=sys.stderr, desc="translate") as progress,
  ):
    for index, translation_ in enumerate(translator.translate(lines)):
      out.write("".join(t.text + "\n" for t in translation_.n_best))
      if attention is not None:
        attention.write(translation_.to_json(index) + "\n")
      if heatmaps and translation_.target_tokens:
        _draw(heatmaps, index, translation_)
      progress.update()
      if progress.n % translator.batch_size == 0:
        out.flush()
    out.flush()


if __name__ == "__main__":
  cli.run(main)
