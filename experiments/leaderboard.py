r"""Ranks the variants of finished runs by one metric, seeds pooled into mean ± std.

  python -m experiments.leaderboard runs/sweep_scores runs/sweep_align \
      [--metric=test.bleu] [--format=markdown|csv|html] [--output=leaderboard.html]

Reads every `result.json` under the directories; runs whose configs differ only by seed
(or data location) are one variant. Unfinished and failed runs are listed, not ranked.
HTML links each seed's plots relative to --output.
"""

import os
import sys

from absl import app, flags

from attn_research.errors import ConfigError
from attn_research.evaluation import leaderboard

_METRIC = flags.DEFINE_string(
  "metric", "test.bleu", "split.metric to rank by, e.g. test.bleu or validation.ppl."
)
_FORMAT = flags.DEFINE_enum("format", "markdown", leaderboard.FORMATS, "Output format.")
_OUTPUT = flags.DEFINE_string("output", "", "File to write; empty: stdout.")


def main(argv: list[str]) -> None:
  if len(argv) < 2:
    raise app.UsageError("Pass one or more run or sweep directories.")
  try:
    board = leaderboard.rank(leaderboard.collect(argv[1:]), _METRIC.value)
  except ConfigError as e:
    sys.exit(f"error: {e}")
  link_base = os.path.dirname(os.path.abspath(_OUTPUT.value)) if _OUTPUT.value else os.getcwd()
  text = leaderboard.render(board, _FORMAT.value, link_base)
  if not _OUTPUT.value:
    sys.stdout.write(text)
    if _FORMAT.value == "csv" and (board.unfinished or board.failed):  # rows hold variants only
      print(
        f"not ranked: {len(board.unfinished)} unfinished, {len(board.failed)} failed "
        "(--format=markdown lists them)",
        file=sys.stderr,
      )
    return
  os.makedirs(link_base, exist_ok=True)
  with open(_OUTPUT.value, "w", encoding="utf-8") as f:
    f.write(text)
  print(
    f"wrote {_OUTPUT.value}: {len(board.entries)} variants, {len(board.unfinished)} unfinished, "
    f"{len(board.failed)} failed"
  )


if __name__ == "__main__":
  app.run(main)
