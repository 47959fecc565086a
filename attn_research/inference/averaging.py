"""Checkpoint averaging: the mean of a run's latest checkpoints' parameters.

Averaging the parameters of the last few checkpoints (Vaswani et al. 2017; OpenNMT-py's
`average_models.py`, fairseq's `average_checkpoints.py`) often gains a little BLEU for
free. The average is saved in the run as `averaged/`, a checkpoint of the latest state
with its parameters replaced, which `experiments.evaluate` and `experiments.translate`
select with `--checkpoint=average`.
"""

import jax
import numpy as np

from attn_research import runs
from attn_research.errors import ConfigError
from attn_research.inference.evaluation import RunVocabs
from attn_research.training import experiment, parallel, setup
from attn_research.training.checkpointing import Checkpointer


def average_params(trees: list) -> object:
  """The element-wise mean of parameter trees, in each leaf's own dtype. Sums run in
  float64, where n float32 values add exactly, so the mean of identical float32 (or
  narrower) trees is that tree, bit for bit."""

  def mean(*leaves):
    total = np.sum([np.asarray(x, np.float64) for x in leaves], axis=0)
    return (total / len(leaves)).astype(np.asarray(leaves[0]).dtype)

  return jax.tree.map(mean, *trees)


def average_checkpoints(workdir: str, last: int) -> list[int]:
  """Writes the mean of the latest `last` checkpoints of the run in `workdir` as its
  `averaged/` checkpoint (at the latest step) and returns the averaged steps.

  Raises:
    ConfigError: no run there, or fewer than `last` checkpoints kept.
  """
  if last < 1:
    raise ConfigError(f"--last={last}; average at least 1 checkpoint.")
  config = experiment.read_stored(workdir)
  run = runs.Workdir(workdir)
  mesh = parallel.make_mesh()
  _, like = setup.build(config, RunVocabs.of_run(run, config), mesh)
  abstract = setup.abstract_state(like)
  source = Checkpointer(run.file(runs.CHECKPOINTS), config.train.keep_checkpoints)
  try:
    kept = source.all_steps()
    if len(kept) < last:
      raise ConfigError(
        f"{run.path} keeps {len(kept)} checkpoints (steps {', '.join(map(str, kept)) or 'none'}); "
        f"average at most that many, or train with train.keep_checkpoints ≥ {last}."
      )
    steps = kept[-last:]
    states = [source.restore(step, abstract)[0] for step in steps]
  finally:
    source.close()
  params = jax.device_put(average_params([s.params for s in states]), parallel.replicated(mesh))
  target = Checkpointer(run.file(runs.AVERAGED), keep=1)
  try:
    target.save(steps[-1], states[-1].replace(params=params), {"averaged_steps": steps})
  finally:
    target.close()
  return steps
