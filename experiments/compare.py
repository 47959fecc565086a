r"""Puts finished runs side by side: a metrics table, each run's paired bootstrap test
against the first, and one BLEU-by-length plot.

  python -m experiments.compare --workdirs=runs/reverse_luong,runs/reverse_none_state \
      --split=test [--metric=bleu] --output=reverse_by_length.png

Reads each run's `result.json` and the per-sentence statistics of its final evaluation
(`statistics.<split>.npz`); nothing is decoded again, and every number is the run's own.
Runs trained with other library versions, processors or devices get a one-line warning.
"""

import os
import sys

from absl import app, flags

from attn_research import provenance, runs
from attn_research.errors import ConfigError
from attn_research.evaluation import metrics, significance
from attn_research.training import experiment
from experiments import cli, report

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories, comma-separated.")
_SPLIT = flags.DEFINE_string("split", "test", "Split whose metrics to compare.")
_METRIC = flags.DEFINE_enum(
  "metric",
  "bleu",
  list(metrics.SCORES),
  "Metric of the paired bootstrap test of each run against the first.",
)
_OUTPUT = flags.DEFINE_string("output", "", "PNG for BLEU by source length; empty: no plot.")
flags.mark_flags_as_required(["workdirs"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from attn_research.evaluation import leaderboard, plots
  from attn_research.training.reports import run_label

  labels, results, curves = [], [], {}
  for path in _WORKDIRS.value:
    run = runs.read_run(path)
    if run.status != runs.COMPLETED:
      raise ConfigError(f"{path} holds no completed run ({run.status}); train it first.")
    if _SPLIT.value not in run.result["metrics"]:
      raise ConfigError(
        f"{path} has no {_SPLIT.value!r} metrics (it has {', '.join(run.result['metrics'])}); "
        "pick another --split."
      )
    label = (
      f"{os.path.basename(os.path.abspath(path))} ({run_label(experiment.complete(run.config))})"
    )
    labels.append(label)
    results.append(run.result)
    curves[label] = run.result["metrics"][_SPLIT.value]["bleu_by_length"]
  tests, problem = [], ""
  try:
    statistics = [
      leaderboard.sentence_statistics([leaderboard.Run(p, r)], _SPLIT.value, _METRIC.value)
      for p, r in zip(_WORKDIRS.value, results, strict=True)
    ]
  except ConfigError as e:
    problem = f"No tests: {e}"
  else:
    (references, baseline), score = statistics[0], metrics.SCORES[_METRIC.value]
    tests.append(None)  # the first is the baseline
    for fingerprint, seeds in statistics[1:]:
      same = fingerprint == references
      tests.append(significance.paired_bootstrap(baseline, seeds, score) if same else None)
      problem = problem or ("" if same else "Runs marked — scored other references: not tested.")
  print(report.compare_table(labels, results, _SPLIT.value, _METRIC.value, tests), end="")
  if problem:
    print(problem)
  if warning := provenance.differences(results):
    print(warning, file=sys.stderr)
  if _OUTPUT.value:
    plots.save_bleu_by_length(_OUTPUT.value, curves, f"{_SPLIT.value}: BLEU by source length")
    print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  cli.run(main)
