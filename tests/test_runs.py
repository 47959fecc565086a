import json
import os
import subprocess
import sys

import ml_collections
import pytest

from attn_research import runs
from attn_research.config import files as config_files
from attn_research.config import overrides as config_overrides
from attn_research.errors import ConfigError
from attn_research.training import experiment
from experiments.configs import dates
from tests.conftest import REPO


def _write(path, name, data):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, name), "w") as f:
    f.write(data if isinstance(data, str) else json.dumps(data))


def test_statuses(tmp_path):
  assert runs.read_run(str(tmp_path / "absent")).status == runs.NEW
  started = tmp_path / "started"
  _write(started, runs.CONFIG, {"seed": 0})
  assert runs.read_run(str(started)).status == runs.UNFINISHED
  done = tmp_path / "done"
  _write(done, runs.RESULT, {"status": "completed", "config": {"seed": 3}, "metrics": {}})
  run = runs.read_run(str(done))
  assert (run.status, run.config) == (runs.COMPLETED, {"seed": 3})
  diverged = tmp_path / "diverged"
  _write(diverged, runs.RESULT, {"status": "diverged", "step": 40, "error": "loss nan"})
  assert (runs.read_run(str(diverged)).status, runs.read_run(str(diverged)).error) == (
    runs.DIVERGED,
    "loss nan",
  )
  failed = tmp_path / "failed"
  runs.record_failure(str(failed), {"error": "boom\nlast line", "returncode": 3})
  assert runs.read_run(str(failed)).status == runs.FAILED_STATUS
  assert runs.read_run(str(failed)).error.endswith("last line")
  # A retry that completed wins over the failure it followed.
  _write(failed, runs.RESULT, {"status": "completed"})
  assert runs.read_run(str(failed)).status == runs.COMPLETED
  torn = tmp_path / "torn"
  _write(torn, runs.RESULT, '{"status": "compl')
  run = runs.read_run(str(torn))
  assert run.status == runs.UNFINISHED and "Cannot read" in run.error
  assert [runs.is_finished(str(p)) for p in (started, done, diverged, torn)] == [
    False,
    True,
    True,
    False,
  ]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
  path = str(tmp_path / "a.json")
  runs.write_json(path, {"x": 1})
  runs.write_json(path, {"x": 2})
  assert runs.read_json(path) == {"x": 2}
  assert os.listdir(tmp_path) == ["a.json"]
  with pytest.raises(TypeError):  # not JSON: the old file stays whole
    runs.write_json(path, {"x": object()})
  assert runs.read_json(path) == {"x": 2} and os.listdir(tmp_path) == ["a.json"]


def test_flatten_differences_and_stored_form():
  config = dates.get_config()
  flat = config_overrides.flatten(config)
  assert flat["model.attention.score"] == "general" and flat["data.target_buckets"] == (12,)
  stored = config_overrides.stored(config)
  assert stored["data"]["target_buckets"] == [12]
  assert config_overrides.config_differences(stored, config) == []  # tuples equal their lists
  back = experiment.complete(json.loads(json.dumps(stored)))
  assert back.data.source_buckets == (12, 20, 28, 40) and back.to_dict() == config.to_dict()
  # A run stored before a key existed reads that key as the field's default.
  older = json.loads(json.dumps(stored))
  del older["train"]["dtype"], older["model"]["attention"]["sigma"]
  assert config_overrides.config_differences(experiment.complete(older), config) == []
  assert experiment.complete(older).to_dict() == config.to_dict()
  assert config_overrides.config_differences(
    experiment.complete(older),
    config_overrides.apply_overrides(config, {"train.dtype": "bfloat16"}),
  )
  other = config_overrides.apply_overrides(config, {"model.attention.score": "dot", "seed": 2})
  assert config_overrides.config_differences(config, other) == [
    "model.attention.score: 'general' → 'dot'",
    "seed: 0 → 2",
  ]


def test_apply_overrides_checks_each_key_and_type():
  base = dates.get_config()
  config = config_overrides.apply_overrides(
    base, {"train.learning_rate": 1, "data.source_buckets": [8, 16], "model.dropout": 0.1}
  )
  assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
  assert config.data.source_buckets == (8, 16) and base.data.source_buckets[0] == 12
  for overrides, message in (
    ({"train.learning_rat": 1.0}, r"did you mean train.learning_rate\?"),
    ({"train": 1}, "is a config section"),
    ({"train.num_steps": 1.5}, "1.5 is a float, train.num_steps a int"),
    ({"model.decoder.input_feeding": "yes"}, "'yes' is a str"),
  ):
    with pytest.raises(ConfigError, match=message):
      config_overrides.apply_overrides(base, overrides)


def test_parse_arg():
  assert config_files.parse_arg("en-fr", pair="en-de", steps=0).to_dict() == {
    "pair": "en-fr",
    "steps": 0,
  }
  parsed = config_files.parse_arg(
    "pair=en-vi,steps=800,tied=true", pair="en-de", steps=0, tied=False
  )
  assert parsed.to_dict() == {"pair": "en-vi", "steps": 800, "tied": True}
  assert config_files.parse_arg(None, pair="en-de").pair == "en-de"
  with pytest.raises(ConfigError, match=r"Unknown config argument 'size'.*valid: pair, steps"):
    config_files.parse_arg("size=3", pair="en-de", steps=0)
  with pytest.raises(ConfigError, match="steps='many' must be a int"):
    config_files.parse_arg("steps=many", pair="en-de", steps=0)


def test_load_config_takes_the_argument(tmp_path):
  config = config_files.load_config(
    f"{REPO}/experiments/configs/debian_l10n.py:en-fr,scale=tiny,steps=90"
  )
  assert config.dataset.name == "debian_l10n/en-fr" and config.train.num_steps == 90
  assert config.train.eval_every == 90 and config.data.max_train_words == 30
  assert isinstance(config, ml_collections.ConfigDict)
  with pytest.raises(ConfigError, match="No config file"):
    config_files.load_config(str(tmp_path / "none.py"))


def test_workdir_claim_refuses_another_config_and_overwrite_resets(tmp_path):
  run = runs.Workdir(str(tmp_path / "run"))
  config = dates.get_config()
  run.claim(config, overwrite=False, complete=experiment.complete)
  run.claim(config, overwrite=False, complete=experiment.complete)  # the same: resumes
  _write(run.path, "hypotheses.test.txt", "x\n")
  _write(run.path, "notes.txt", "mine\n")
  other = config_overrides.apply_overrides(config, {"seed": 1})
  with pytest.raises(runs.WorkdirConflictError, match=r"seed: 0 → 1.*--overwrite"):
    run.claim(other, overwrite=False, complete=experiment.complete)
  run.claim(other, overwrite=True, complete=experiment.complete)
  assert sorted(os.listdir(run.path)) == [runs.CONFIG, "notes.txt"]  # the user's file stays
  assert run.read_json(runs.CONFIG)["seed"] == 1
  reader = runs.Workdir(str(tmp_path / "elsewhere"), writer=False)
  reader.claim(config, overwrite=False, complete=experiment.complete)
  assert not os.path.exists(reader.path)  # only the writer writes
  # A run stored before keys existed resumes: they read as their defaults.
  older = runs.Workdir(str(tmp_path / "older"))
  stored = config_overrides.stored(config)
  del stored["model"]["attention"]["expectation"], stored["dataset"]["files"]
  os.makedirs(older.path)
  older.write_json(runs.CONFIG, stored)
  older.claim(config, overwrite=False, complete=experiment.complete)
  assert older.read_json(runs.CONFIG) == stored  # read, not rewritten


def test_run_layer_imports_no_jax():
  """Launchers, the leaderboard, reports and paper tables start without loading jax."""
  modules = (
    "launch.sweep",
    "launch.local",
    "launch.slurm",
    "attn_research.runs",
    "attn_research.evaluation.leaderboard",
    "experiments.report",
    "experiments.tables",
  )
  code = (
    f"import sys; import {', '.join(modules)}; "
    "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'orbax')))"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
  )
  assert result.stdout.strip() == "[]"
