import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from attn_research import runs
from attn_research.errors import ConfigError
from attn_research.inference import averaging, evaluation
from attn_research.inference.evaluation import RunVocabs
from attn_research.training import parallel, setup
from attn_research.training.checkpointing import Checkpointer
from tests.conftest import REPO, tiny_config


def test_the_mean_of_identical_trees_is_that_tree_bit_for_bit():
  rng = np.random.default_rng(0)
  tree = {
    "a": rng.normal(size=(5, 7)).astype(np.float32),
    "b": {"c": rng.normal(size=3).astype(np.float16)},
  }
  for n in (1, 2, 3, 7):
    mean = averaging.average_params([tree] * n)
    np.testing.assert_array_equal(mean["a"], tree["a"])
    np.testing.assert_array_equal(mean["b"]["c"], tree["b"]["c"])
    assert mean["a"].dtype == np.float32
  other = {"a": np.ones((5, 7), np.float32), "b": {"c": np.zeros(3, np.float16)}}
  mean = averaging.average_params([tree, other])
  np.testing.assert_allclose(mean["a"], (tree["a"] + 1.0) / 2, rtol=1e-6)


def test_average_of_a_runs_last_checkpoints_is_selectable(tiny_run, dates_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(tiny_run[0], workdir)
  config = tiny_config(dates_data_dir)
  assert averaging.average_checkpoints(workdir, last=2) == [200, 300]

  run = runs.Workdir(workdir)
  vocabs = RunVocabs.of_run(run, config)
  mesh = parallel.make_mesh()
  _, like = setup.build(config, vocabs, mesh)
  kept = Checkpointer(run.file(runs.CHECKPOINTS), keep=2)
  p200, p300 = (kept.restore(step, setup.abstract_state(like))[0].params for step in (200, 300))
  kept.close()
  _, step, averaged = evaluation.restore_model(run, config, "average", vocabs, mesh)
  assert step == 300
  jax.tree.map(
    lambda a, b, c: np.testing.assert_allclose(
      a, (np.float64(b) + np.float64(c)) / 2, rtol=1e-6, atol=1e-7
    ),
    averaged,
    p200,
    p300,
  )
  with pytest.raises(ConfigError, match=r"keeps 2 checkpoints \(steps 200, 300\); average at most"):
    averaging.average_checkpoints(workdir, last=3)
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.evaluate",
      f"--workdir={workdir}",
      "--checkpoint=average",
      f"--config.dataset.data_dir={dates_data_dir}",
      "--split=validation",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert '"checkpoint": "average", "step": 300' in result.stdout
