"""TensorBoard event files that mirror a run's `metrics.jsonl`, in `<run>/tensorboard`.

`tensorboard --logdir runs` then plots every run under `runs/`. Each record's numbers
become scalars named `<split>/<metric>` at the record's step: the training records'
`train_loss`, `epoch`, `grad_norm`, `learning_rate` and `tokens_per_second` as
`train/loss`, `train/epoch`, … plus `train/ppl`; evaluation records' `validation_bleu`,
`test_long_ppl`, … as `validation/bleu`, `test_long/ppl`. A resumed run opens a new event
file that purges the steps after its checkpoint (TensorBoard's `SessionLog.START`), as
the run drops them from `metrics.jsonl`. Written with tensorboardX, without TensorFlow.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams

HPARAM_METRICS = ("bleu", "ppl", "exact_match")  # shown beside the config in HParams

TRAIN_KEYS = {
  "train_loss": "train/loss",
  "epoch": "train/epoch",
  "grad_norm": "train/grad_norm",
  "learning_rate": "train/learning_rate",
  "tokens_per_second": "train/tokens_per_second",
  "train_coverage_loss": "train/coverage_loss",
  "train_guided_alignment_loss": "train/guided_alignment_loss",
}


def scalars(record: dict, splits: Sequence[str]) -> dict[str, float]:
  """A `metrics.jsonl` record's numbers by TensorBoard tag (`splits`: the evaluated ones)."""
  out = {}
  by_length = sorted(splits, key=len, reverse=True)  # `test_long_` before `test_`
  for key, value in record.items():
    if isinstance(value, bool) or not isinstance(value, int | float) or key == "step":
      continue
    if key in TRAIN_KEYS:
      out[TRAIN_KEYS[key]] = float(value)
      continue
    split = next((s for s in by_length if key.startswith(f"{s}_")), None)
    if split is not None:
      out[f"{split}/{key[len(split) + 1 :]}"] = float(value)
  if "train/loss" in out and math.isfinite(out["train/loss"]):
    out["train/ppl"] = math.exp(min(out["train/loss"], 700.0))
  return out


class Summaries:
  """Writes records as TensorBoard scalars (a no-op where `enabled` is False: the
  processes of a multi-host run that do not write the run)."""

  def __init__(
    self,
    directory: str,
    splits: Sequence[str],
    start_step: int,
    enabled: bool,
    config: Mapping[str, Any] | None = None,
  ):
    """`config`: the run's `overrides.hyperparameters`, written as TensorBoard hparams so
    that its HParams view sets runs side by side (with their `HPARAM_METRICS` per split)."""
    self.splits = tuple(splits)
    self._writer = None
    if enabled:
      # A resumed run hides what a killed one logged after the checkpoint it resumes from.
      purge = start_step + 1 if start_step else None
      self._writer = SummaryWriter(directory, purge_step=purge, flush_secs=10)
      if config is not None:
        tags = {f"{split}/{m}": 0.0 for split in ("validation", *splits) for m in HPARAM_METRICS}
        for summary in hparams(dict(config), tags):
          self._writer.file_writer.add_summary(summary)

  def write(self, record: dict) -> None:
    if self._writer is None:
      return
    for tag, value in scalars(record, self.splits).items():
      self._writer.add_scalar(tag, value, record["step"])
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
