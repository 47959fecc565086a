"""The watched validation metric: direction, patience, min_delta, state."""

import pytest

from attn_research.errors import ConfigError
from attn_research.training.watch import Watch


def _reference(values, higher, patience, min_delta):
  """The validations (1-based) after which patience runs out, counted without a reset."""
  best, waiting, fired = None, 0, []
  for i, v in enumerate(values, 1):
    if best is None or (v - best if higher else best - v) > min_delta:
      best, waiting = v, 0
    else:
      waiting += 1
      if waiting >= patience:
        fired.append(i)
  return fired


@pytest.mark.parametrize(
  "metric,patience,min_delta",
  [("validation.bleu", 2, 0.0), ("validation.ppl", 1, 0.05), ("validation.exact_match", 3, 0.01)],
)
def test_watch_fires_when_the_metric_stalls(metric, patience, min_delta):
  values = [1.0, 1.5, 1.52, 1.4, 1.6, 1.6, 1.58, 1.3, 2.0, 2.0, 1.9, 1.95, 1.99]
  if metric == "validation.ppl":
    values = [5 - v for v in values]  # the same trajectory, lower is better
  watch = Watch(metric, patience, min_delta)
  name = metric.split(".")[1]
  fired = [i for i, v in enumerate(values, 1) if watch.update(i * 100, {"loss": 0.1, name: v})]
  assert fired == _reference(values, metric != "validation.ppl", patience, min_delta)
  assert fired  # the trajectory stalls for each setting


def test_watch_state_round_trips_and_reset_restarts_the_count():
  watch = Watch("validation.bleu", patience=2)
  for step, bleu in ((100, 10.0), (200, 9.0)):
    watch.update(step, {"bleu": bleu})
  resumed = Watch("validation.bleu", patience=2)
  resumed.restore(watch.state())
  assert resumed.state() == {"best": 10.0, "best_step": 100, "waiting": 1}
  assert resumed.update(
    300, {"bleu": 9.5}
  ) and "bleu did not improve on its best (10 at step 100)" in (resumed.describe())
  resumed.reset()
  assert not resumed.update(400, {"bleu": 9.0}) and resumed.waiting == 1


def test_a_metric_the_validation_lacks_is_a_one_line_error():
  with pytest.raises(ConfigError, match=r"validation.aer is not measured .* \(it has bleu, ppl\)"):
    Watch("validation.aer", 1).update(100, {"bleu": 1.0, "ppl": 2.0, "num_examples": 5})
