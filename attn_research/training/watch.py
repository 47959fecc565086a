"""A validation metric watched across a run: the `plateau` schedule's decays and early
stopping both act when it has not improved for `patience` validations.

The watch's state goes into every checkpoint, so a killed run resumes the same decisions.
"""

import dataclasses

from attn_research.config.fields import NON_NEGATIVE, Choice, Float, field
from attn_research.errors import ConfigError
from attn_research.evaluation.metrics import HIGHER_IS_BETTER

# What a watch can follow: a metric of the validation split, its direction known.
METRICS = tuple(f"validation.{name}" for name in HIGHER_IS_BETTER)


@dataclasses.dataclass(frozen=True)
class EarlyStoppingConfig:
  """`train.early_stopping`: stop when a validation metric stops improving (JoeyNMT's,
  fairseq's and Marian's `patience`)."""

  metric: str = field(Choice(names=METRICS), "validation.ppl", "the metric watched")
  patience: int = field(
    NON_NEGATIVE,
    0,
    "stop after this many validations in a row without improvement (0: never stop early)",
  )
  min_delta: float = field(
    Float(low=0), 0.0, "an improvement is a change beyond the best by more than this"
  )


@dataclasses.dataclass
class Watch:
  """Counts the validations since `metric` last improved on its best by > `min_delta`.

  Attributes:
    best: the best value seen (None before the first validation), at `best_step`.
    waiting: validations since the best one.
  """

  metric: str
  patience: int
  min_delta: float = 0.0
  best: float | None = None
  best_step: int | None = None
  waiting: int = 0

  def update(self, step: int, validation: dict) -> bool:
    """Records the validation at `step`; True when `patience` validations in a row have
    not improved (the caller acts, and may `reset`).

    Raises:
      ConfigError: the validation has no such metric (AER needs gold alignments).
    """
    name = self.metric.removeprefix("validation.")
    if name not in validation:
      raise ConfigError(
        f"{self.metric} is not measured on this run's validation split (it has "
        f"{', '.join(k for k in validation if k in HIGHER_IS_BETTER)}); watch one of those."
      )
    value = float(validation[name])
    sign = 1.0 if HIGHER_IS_BETTER[name] else -1.0
    if self.best is None or sign * (value - self.best) > self.min_delta:
      self.best, self.best_step, self.waiting = value, step, 0
      return False
    self.waiting += 1
    return self.waiting >= self.patience

  def reset(self) -> None:
    """Starts counting again (after a decay)."""
    self.waiting = 0

  def describe(self) -> str:
    return (
      f"{self.metric} did not improve on its best ({self.best:.6g} at step {self.best_step}) "
      f"by more than {self.min_delta:g} for {self.waiting} validations"
    )

  def state(self) -> dict:
    return {"best": self.best, "best_step": self.best_step, "waiting": self.waiting}

  def restore(self, state: dict | None) -> None:
    if state:
      self.best, self.best_step, self.waiting = state["best"], state["best_step"], state["waiting"]
