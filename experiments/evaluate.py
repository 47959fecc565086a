r"""Decodes a split with a trained run's best (or latest) checkpoint.

  python -m experiments.evaluate --workdir=runs/dates [--config.decode.beam_size=5 ...] \
      [--split=test] [--checkpoint=best|latest|average] [--output=hyps.txt] [--reports_dir=DIR]
  python -m experiments.evaluate --workdirs=runs/a,runs/b,runs/c   # an ensemble

The config is the run's own (`config.json`); only `decode.*`, `eval.*`, `dataset.data_dir`
and a `text` run's `dataset.files.{validation,test}` may be overridden. Writes one detokenised hypothesis per line (in the
split's order) to --output; the hypotheses, their per-sentence metric statistics (for
leaderboards' significance tests), the BLEU-by-length plot and `eval.num_heatmaps`
attention heatmaps to --reports_dir, and prints the metrics as JSON on the last line. --workdirs
evaluates several runs of one vocabulary as an ensemble, with the first run's data and
config: each step's probability (teacher forcing's, for the perplexity, and the search's)
is the mean of the runs'.
"""

import json
import sys

from absl import app, flags
from ml_collections import config_flags

from attn_research import runs
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_WORKDIRS = flags.DEFINE_list(
  "workdirs",
  None,
  "Instead of --workdir: runs to evaluate as an ensemble (their step probabilities averaged; "
  "the first run's data and config).",
)
_SPLIT = flags.DEFINE_string("split", "test", "Split to decode.")
_CHECKPOINT = flags.DEFINE_enum(
  "checkpoint",
  "best",
  ["best", "latest", "average"],
  "Lowest-validation-perplexity, latest, or averaged (experiments.average) checkpoint.",
)
_OUTPUT = flags.DEFINE_string("output", None, "File for the hypotheses, one per line.")
_REPORTS_DIR = flags.DEFINE_string(
  "reports_dir",
  "",
  "Directory for hypotheses, per-sentence metric statistics, the BLEU-by-length plot and heatmaps.",
)
_CONFIG = config_flags.DEFINE_config_dict(
  "config", cli.stored_run_config(sys.argv), "The run's config.", lock_config=True
)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from attn_research.errors import ConfigError
  from attn_research.inference import evaluation

  if bool(_WORKDIR.value) == bool(_WORKDIRS.value):
    raise ConfigError("Pass --workdir=RUN, or --workdirs=RUN1,RUN2,… for an ensemble.")
  result, hypotheses = evaluation.evaluate_run(
    _WORKDIR.value or _WORKDIRS.value,
    _CONFIG.value,
    _SPLIT.value,
    _CHECKPOINT.value,
    _REPORTS_DIR.value,
  )
  if _OUTPUT.value:
    runs.atomic_write(_OUTPUT.value, "".join(h + "\n" for h in hypotheses))
  print(json.dumps(result))


if __name__ == "__main__":
  cli.run(main)
