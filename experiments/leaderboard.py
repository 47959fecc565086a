r"""Ranks the variants of finished runs by one metric, seeds pooled into mean ± std, and
tests each against a baseline variant.

  python -m experiments.leaderboard runs/sweep_scores runs/sweep_align \
      [--metric=test.bleu] [--baseline=VARIANT] [--format=markdown|csv|html] \
      [--output=leaderboard.html]

Reads every `result.json` under the directories; runs whose configs differ only by seed
(or data location) are one variant. Unfinished and failed runs are listed, not ranked.
Diverged runs are listed unranked too. Each variant gets a paired bootstrap test against
the baseline (default: the first row) on the metric, over its runs' per-sentence
statistics (`statistics.<split>.npz`; bleu, tokenized_bleu, chrf, exact_match, aer): the
95% interval of its mean, its difference from the baseline and a p-value (a `p_value`
column in CSV). HTML draws each variant's seeds, mean and interval, and links each seed's
plots relative to --output. Runs trained with other library versions, processors or
devices get a one-line warning.
"""

import os
import sys

from absl import app, flags

from attn_research import provenance, runs
from attn_research.evaluation import leaderboard
from experiments import cli, report

_METRIC = flags.DEFINE_string(
  "metric", "test.bleu", "split.metric to rank by, e.g. test.bleu or validation.ppl."
)
_BASELINE = flags.DEFINE_string(
  "baseline",
  "",
  "Variant to test the others against (its name or a unique part); empty: the first row.",
)
_FORMAT = flags.DEFINE_enum("format", "markdown", report.FORMATS, "Output format.")
_OUTPUT = flags.DEFINE_string("output", "", "File to write; empty: stdout.")


def main(argv: list[str]) -> None:
  if len(argv) < 2:
    raise app.UsageError("Pass one or more run or sweep directories.")
  collection = leaderboard.collect(argv[1:])
  if warning := provenance.differences([run.result for run in collection.runs]):
    print(warning, file=sys.stderr)
  board = leaderboard.rank(collection, _METRIC.value, _BASELINE.value)
  link_base = os.path.dirname(os.path.abspath(_OUTPUT.value)) if _OUTPUT.value else os.getcwd()
  text = report.render_leaderboard(board, _FORMAT.value, link_base)
  left_out = ", ".join(f"{len(items)} {title.lower()}" for title, items in board.skipped)
  if not _OUTPUT.value:
    sys.stdout.write(text)
    if _FORMAT.value == "csv" and any(items for _, items in board.skipped):  # variants only
      print(f"not ranked: {left_out} (--format=markdown lists them)", file=sys.stderr)
    return
  os.makedirs(link_base, exist_ok=True)
  runs.atomic_write(_OUTPUT.value, text)
  print(f"wrote {_OUTPUT.value}: {len(board.entries)} variants, {left_out}")


if __name__ == "__main__":
  cli.run(main)
