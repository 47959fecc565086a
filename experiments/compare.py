r"""Puts finished runs side by side: a metrics table and one BLEU-by-length plot.

  python -m experiments.compare --workdirs=runs/reverse_luong,runs/reverse_none_state \
      --split=test --output=reverse_by_length.png

Reads each run's `result.json` (nothing is recomputed); every number is the run's own.
"""

import os
import sys

from absl import app, flags

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories, comma-separated.")
_SPLIT = flags.DEFINE_string("split", "test", "Split whose metrics to compare.")
_OUTPUT = flags.DEFINE_string("output", "", "PNG for BLEU by source length; empty: no plot.")
flags.mark_flags_as_required(["workdirs"])

COLUMNS = ("bleu", "tokenized_bleu", "chrf", "exact_match", "ppl", "aer")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  import ml_collections

  from attn_research.evaluation import plots
  from attn_research.training.trainer import run_label
  from attn_research.training.workdir import RESULT, Workdir

  rows, curves = [], {}
  for path in _WORKDIRS.value:
    run = Workdir(path)
    if not run.exists(RESULT) or run.read_json(RESULT).get("status") != "completed":
      sys.exit(f"error: {run.path} holds no completed run ({RESULT}); train it first.")
    result = run.read_json(RESULT)
    if _SPLIT.value not in result["metrics"]:
      sys.exit(
        f"error: {run.path} has no {_SPLIT.value!r} metrics (it has "
        f"{', '.join(result['metrics'])}); pick another --split."
      )
    metrics = result["metrics"][_SPLIT.value]
    label = (
      f"{os.path.basename(run.path)} ({run_label(ml_collections.ConfigDict(result['config']))})"
    )
    rows.append((label, [metrics.get(c) for c in COLUMNS]))
    curves[label] = metrics["bleu_by_length"]
  width = max(len(label) for label, _ in rows)
  print(f"{'run':{width}}  " + "  ".join(f"{c:>14}" for c in COLUMNS))
  for label, values in rows:
    cells = ("—" if v is None else f"{v:.4f}" for v in values)
    print(f"{label:{width}}  " + "  ".join(f"{c:>14}" for c in cells))
  if _OUTPUT.value:
    plots.save_bleu_by_length(_OUTPUT.value, curves, f"{_SPLIT.value}: BLEU by source length")
    print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  app.run(main)
