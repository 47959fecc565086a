"""Optional trackers: what they are handed (stand-in modules), and the real libraries
where they are installed (`pip install -e ".[wandb,mlflow]"`)."""

import sys
import types

import ml_collections
import pytest

from attn_research.config import overrides
from attn_research.errors import ConfigError
from attn_research.training.trackers import Trackers, TrackingConfig

# What the trainer hands them: the config flattened, tuples as text.
CONFIG = overrides.hyperparameters(
  ml_collections.ConfigDict(
    {"model": {"attention": {"score": "dot"}}, "data": {"source_buckets": (10, 20)}, "seed": 3}
  )
)
RECORDS = [
  {"step": 25, "epoch": 0.5, "train_loss": 2.5, "learning_rate": 0.01, "tokens_per_second": None},
  {"step": 50, "validation_bleu": 12.5, "validation_bleu_signature": "nrefs:1", "flag": True},
]


def _stand_ins(monkeypatch):
  calls = []
  run = types.SimpleNamespace(
    log=lambda numbers, step: calls.append(("wandb.log", step, numbers)),
    finish=lambda: calls.append(("wandb.finish",)),
  )
  wandb = types.ModuleType("wandb")
  wandb.init = lambda **kw: calls.append(("wandb.init", kw)) or run
  mlflow = types.ModuleType("mlflow")
  mlflow.set_tracking_uri = lambda uri: calls.append(("mlflow.uri", uri))
  mlflow.start_run = lambda run_name: calls.append(("mlflow.start", run_name))
  mlflow.log_params = lambda params: calls.append(("mlflow.params", params))
  mlflow.log_metrics = lambda numbers, step: calls.append(("mlflow.log", step, numbers))
  mlflow.end_run = lambda: calls.append(("mlflow.end",))
  monkeypatch.setitem(sys.modules, "wandb", wandb)
  monkeypatch.setitem(sys.modules, "mlflow", mlflow)
  return calls


def test_trackers_mirror_every_record_and_the_config(monkeypatch, tmp_path):
  calls = _stand_ins(monkeypatch)
  workdir = tmp_path / "run_a"
  trackers = Trackers(TrackingConfig(wandb=True, mlflow=True), str(workdir), CONFIG)
  for record in RECORDS:
    trackers.write(record)
  trackers.close()
  init = calls[0][1]
  assert init["mode"] == "offline" and init["dir"] == str(workdir) and init["name"] == "run_a"
  assert init["resume"] == "allow" and init["config"]["data.source_buckets"] == "(10, 20)"
  again = Trackers(TrackingConfig(wandb=True), str(workdir), CONFIG)
  assert calls[-1][1]["id"] == init["id"]  # a resumed run continues the same W&B run
  again.close()
  numbers = [{"epoch": 0.5, "train_loss": 2.5, "learning_rate": 0.01}, {"validation_bleu": 12.5}]
  assert [c for c in calls if c[0] == "wandb.log"] == [
    ("wandb.log", 25, numbers[0]),
    ("wandb.log", 50, numbers[1]),
  ]
  assert [c for c in calls if c[0] == "mlflow.log"] == [
    ("mlflow.log", 25, numbers[0]),
    ("mlflow.log", 50, numbers[1]),
  ]
  assert ("mlflow.uri", f"file:{workdir}/mlruns") in calls and ("mlflow.end",) in calls
  assert ("mlflow.params", {**CONFIG, "data.source_buckets": "(10, 20)"}) in calls


def test_a_tracker_that_is_not_installed_is_a_one_line_error(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
  with pytest.raises(
    ConfigError, match=r"tracking.wandb=True needs wandb; pip install -e '\.\[wandb\]'"
  ):
    Trackers(TrackingConfig(wandb=True), str(tmp_path), CONFIG)
  Trackers(TrackingConfig(), str(tmp_path), CONFIG).close()  # off: nothing is imported


def test_mlflow_file_store_holds_the_metrics(tmp_path):
  mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is an optional extra")
  trackers = Trackers(TrackingConfig(mlflow=True), str(tmp_path / "run"), CONFIG)
  for record in RECORDS:
    trackers.write(record)
  trackers.close()
  client = mlflow.tracking.MlflowClient(f"file:{tmp_path}/run/mlruns")
  (run,) = client.search_runs(experiment_ids=["0"])
  history = client.get_metric_history(run.info.run_id, "train_loss")
  assert [(m.step, m.value) for m in history] == [(25, 2.5)]
  assert run.data.params["model.attention.score"] == "dot"


def test_wandb_offline_run_is_written_in_the_workdir(tmp_path, monkeypatch):
  pytest.importorskip("wandb", reason="wandb is an optional extra")
  monkeypatch.setenv("WANDB_SILENT", "true")
  trackers = Trackers(TrackingConfig(wandb=True), str(tmp_path / "run"), CONFIG)
  for record in RECORDS:
    trackers.write(record)
  trackers.close()
  runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
  assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
