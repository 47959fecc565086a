import json
import os

import pytest

from attn_research.training.summaries import scalars
from tests.conftest import tensorboard_events, tensorboard_scalars


def test_records_become_scalars_by_split():
  splits = ("validation", "test", "test_long")
  train = {
    "step": 5,
    "train_loss": 2.0,
    "grad_norm": 0.5,
    "learning_rate": 1e-3,
    "tokens_per_second": None,
  }
  assert scalars(train, splits) == {
    "train/loss": 2.0,
    "train/grad_norm": 0.5,
    "train/learning_rate": 1e-3,
    "train/ppl": pytest.approx(7.389056),
  }
  final = {
    "step": 9,
    "test_long_bleu": 3.0,
    "test_bleu": 4.0,
    "validation_ppl": 8,
    "test_bleu_signature": "nrefs:1",
    "test_bleu_by_length": [{"bleu": 1.0}],
  }
  assert scalars(final, splits) == {"test_long/bleu": 3.0, "test/bleu": 4.0, "validation/ppl": 8.0}


def test_a_runs_event_files_hold_its_metrics(tiny_run):
  workdir, _ = tiny_run
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  expected = {
    (tag, r["step"]): value
    for r in records
    for tag, value in scalars(r, ("validation", "test")).items()
  }
  read = tensorboard_scalars(os.path.join(workdir, "tensorboard"))
  assert read.keys() == expected.keys()
  assert {tag for tag, _ in read} >= {
    "train/loss",
    "train/ppl",
    "validation/bleu",
    "test/exact_match",
  }
  for key, value in expected.items():
    assert read[key] == pytest.approx(value, rel=1e-6), key


def test_a_runs_config_is_in_tensorboards_hparams(tiny_run):
  from tensorboardX.proto import plugin_hparams_pb2

  workdir, result = tiny_run
  hparams = {}
  for event in tensorboard_events(os.path.join(workdir, "tensorboard")):
    for value in event.summary.value:
      if value.tag == "_hparams_/session_start_info":
        content = value.metadata.plugin_data.content
        info = plugin_hparams_pb2.HParamsPluginData.FromString(content).session_start_info
        hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}
  assert hparams["model.attention.score"] == "general"
  assert hparams["train.num_steps"] == result["config"]["train"]["num_steps"] == 300
  assert hparams["data.source_buckets"] == "(20, 40)"
