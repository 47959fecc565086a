"""End to end: a tiny dates run learns, 1 and 8 devices agree, a preempted or killed run
resumes, one trainer at a time."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
import sacrebleu

from attn_research import run_lock, runs
from attn_research.data import datasets
from attn_research.errors import ConfigError
from attn_research.evaluation import metrics, significance
from attn_research.runs import WorkdirConflictError
from attn_research.training import parallel, trainer
from attn_research.training.preemption import Preemption
from tests.conftest import (
  DATES_SIZES,
  REPO,
  named,
  short_synthetic_config,
  tensorboard_scalars,
  tiny_config,
  tiny_train_command,
)


def _read(path):
  if not os.path.exists(path):
    return ""
  with open(path) as f:
    return f.read()


def _config(data_dir, **train):
  return tiny_config(data_dir, **train)


def test_tiny_run_learns_and_writes_its_files(tiny_run, dates_data_dir):
  workdir, result = tiny_run
  assert result["status"] == "completed"
  test = result["metrics"]["test"]
  assert test["num_examples"] == DATES_SIZES["test"]
  assert test["exact_match"] > 0.6, test  # from 0 at initialisation, in 300 steps
  assert test["ppl"] < 1.3
  assert result["num_params"] > 10_000 and result["train_tokens_per_second"] > 0
  with open(os.path.join(workdir, "result.json")) as f:
    assert json.load(f)["metrics"]["test"]["exact_match"] == test["exact_match"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  losses = [r["train_loss"] for r in records if "train_loss" in r]
  assert len(losses) == 12 and losses[-1] < 0.25 * losses[0]
  assert [r["step"] for r in records if "validation_ppl" in r] == [100, 200, 300]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["decoder"]["type"] == "luong"
  # Reports of the final evaluation: hypotheses, BLEU by length, heatmaps (dates has no
  # gold alignments, so no AER).
  assert "aer" not in test
  bins = test["bleu_by_length"]
  assert sum(b["num_examples"] for b in bins) == DATES_SIZES["test"] and bins[0]["min_length"] == 1
  references = datasets.open_dataset(named("dates", dates_data_dir)).load()
  for split in ("validation", "test"):
    with open(os.path.join(workdir, f"hypotheses.{split}.txt")) as f:
      hypotheses = f.read().splitlines()
    assert len(hypotheses) == DATES_SIZES["test"]
    # The reported metrics are sacreBLEU's and NumPy's of the hypotheses.
    refs = references[split]["target"]
    reported = result["metrics"][split]
    assert reported["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [refs]).score)
    assert reported["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [refs]).score)
    assert reported["exact_match"] == np.mean(np.asarray(hypotheses) == np.asarray(refs))
    # Per-sentence statistics, for significance tests: they sum to the reported metrics.
    saved = significance.load(os.path.join(workdir, f"statistics.{split}.npz"))
    assert sorted(saved.metrics) == ["bleu", "chrf", "exact_match", "tokenized_bleu"]
    for name, rows in saved.metrics.items():
      assert rows.shape[0] == DATES_SIZES["test"]
      score = metrics.SCORES[name](rows.sum(0))
      assert score == pytest.approx(result["metrics"][split][name], abs=1e-9)
    assert os.path.getsize(os.path.join(workdir, f"bleu_by_length.{split}.png")) > 1000
    heatmaps = sorted(os.listdir(os.path.join(workdir, "heatmaps", split)))
    assert heatmaps == ["00000.png"]  # eval.num_heatmaps of the tiny config


def test_one_and_eight_devices_give_the_same_loss_curve(dates_data_dir, tmp_path):
  """The global batch and its mean loss are the same; only the all-reduce order differs,
  which moves float32 sums by a few ulps per step. Measured: 2e-7 relative after 40 Adam
  steps; the test allows 1e-5 (a sharding bug, e.g. a per-device mean, is off by > 1e-2)."""
  assert jax.device_count() == 8
  curves = []
  for devices in (jax.devices()[:1], jax.devices()):
    config = _config(
      dates_data_dir, num_steps=40, log_every=5, eval_every=1000, checkpoint_every=1000
    )
    config.eval.splits, config.eval.num_heatmaps = ("validation",), 0  # only the curves count
    config.data.source_buckets = (40,)  # one shape: one train step compiled per mesh
    workdir = str(tmp_path / f"d{len(devices)}")
    trainer.train_and_evaluate(config, workdir, mesh=parallel.make_mesh(devices))
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      curves.append([json.loads(line)["train_loss"] for line in f if "train_loss" in line])
  assert len(curves[0]) == 8
  np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)


def test_a_preempted_then_killed_run_resumes_to_the_same_result(tiny_run, dates_data_dir, tmp_path):
  """One trainer per workdir; SIGTERM checkpoints the current step and exits preempted; a
  killed holder's workdir is taken over; the run ends as an uninterrupted one, and the
  processes load their compiled steps from the session's compilation cache (which the
  tiny run filled)."""
  _, reference = tiny_run
  workdir = str(tmp_path / "preempted")
  command = tiny_train_command(workdir, dates_data_dir)
  env = {**os.environ, "PYTHONPATH": REPO}
  metrics = os.path.join(workdir, "metrics.jsonl")

  def start_until(step: int) -> subprocess.Popen:
    process = subprocess.Popen(
      command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 300
    while process.poll() is None and f'"step": {step}' not in _read(metrics):
      assert time.time() < deadline
      time.sleep(0.05)
    return process

  first = start_until(150)
  with pytest.raises(run_lock.WorkdirHeldError, match=rf"held by pid {first.pid} on .*since"):
    trainer.train_and_evaluate(_config(dates_data_dir), workdir)
  first.send_signal(signal.SIGTERM)
  output = first.communicate(timeout=300)[0]
  assert first.returncode == runs.EXIT_PREEMPTED, output[-3000:]
  stopped = re.search(r"Stopped by SIGTERM with a checkpoint at step (\d+); rerun", output)
  stopped = int(stopped[1])
  assert 150 <= stopped < 300 and stopped % 100, stopped  # not a periodic checkpoint
  assert str(stopped) in os.listdir(os.path.join(workdir, "checkpoints"))
  assert not os.path.exists(os.path.join(workdir, "result.json"))

  # Killed once step 250 is logged: the step-200 checkpoint has been committed (Orbax
  # ignores a checkpoint whose write was cut off) and 50 logged steps must be discarded.
  second = start_until(250)
  second.send_signal(signal.SIGKILL)
  output = second.communicate()[0]
  assert f"Resumed from the checkpoint at step {stopped} " in output

  rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f"Took over {workdir} from pid {second.pid} on " in rerun.stderr
  assert "Resumed from the checkpoint at step 200 " in rerun.stderr
  with open(os.path.join(workdir, "result.json")) as f:
    resumed = json.load(f)
  assert resumed["metrics"] == reference["metrics"]
  assert resumed["cache_hits"] > 0
  with open(metrics) as f:
    records = [json.loads(line) for line in f]
  steps = [r["step"] for r in records if "train_loss" in r]
  assert steps == sorted(set(steps)) and stopped in steps  # none twice; the cut interval
  # TensorBoard shows the same: the killed run's steps 225 and 250 are purged, and the
  # resumed run's take their place.
  tensorboard = tensorboard_scalars(os.path.join(workdir, "tensorboard"))
  assert len(os.listdir(os.path.join(workdir, "tensorboard"))) == 3
  assert sorted(s for tag, s in tensorboard if tag == "train/loss") == steps
  for r in records:
    if "train_loss" in r:
      assert tensorboard[("train/loss", r["step"])] == pytest.approx(r["train_loss"], rel=1e-6)


def test_workdir_with_another_config_is_refused(tiny_run, dates_data_dir):
  workdir, _ = tiny_run
  config = _config(dates_data_dir)
  config.model.attention.score = "dot"
  with pytest.raises(
    WorkdirConflictError, match=r"model.attention.score: 'general' → 'dot'.*--overwrite"
  ):
    trainer.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["attention"]["score"] == "general"  # nothing was touched


def test_bad_values_fail_before_any_work(dates_data_dir, tmp_path):
  config = _config(dates_data_dir)
  config.model.attention.score = "dott"
  with pytest.raises(ConfigError, match="score='dott' must be one of dot, scaled_dot, general"):
    trainer.train_and_evaluate(config, str(tmp_path / "a"))
  config = _config(dates_data_dir, batch_size=60)
  with pytest.raises(ConfigError, match="divisible by the number of devices"):
    trainer.train_and_evaluate(config, str(tmp_path / "b"))
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


@pytest.fixture(scope="module")
def short_run(synthetic_data_dir, tmp_path_factory):
  """A finished `_short_config` run: (workdir, config, result); tests work on copies."""
  workdir = str(tmp_path_factory.mktemp("short") / "run")
  config = short_synthetic_config(synthetic_data_dir)
  return workdir, config, trainer.train_and_evaluate(config, workdir)


def _copy(run, tmp_path) -> str:
  return shutil.copytree(run, str(tmp_path / "run"))


def _damage(directory):
  """Overwrites every file under `directory` with bytes no reader accepts."""
  for path, _, files in os.walk(directory):
    for name in files:
      with open(os.path.join(path, name), "wb") as f:
        f.write(b"\x00garbage{")


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(short_run, tmp_path, capsys):
  run, config, reference = short_run
  workdir = _copy(run, tmp_path)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["10", "20"]
  os.remove(os.path.join(workdir, "result.json"))
  _damage(os.path.join(workdir, "checkpoints", "20"))
  capsys.readouterr()
  resumed = trainer.train_and_evaluate(config, workdir)
  lines = capsys.readouterr().err.splitlines()
  damaged = [line for line in lines if "does not restore" in line]
  assert len(damaged) == 1 and damaged[0].startswith("Checkpoint 20 in ")
  assert damaged[0].endswith("; trying step 10.")
  assert "Resumed from the checkpoint at step 10" in "\n".join(lines)
  assert resumed["metrics"] == reference["metrics"]  # steps 11–20 trained again, the same

  os.remove(os.path.join(workdir, "result.json"))
  for step in ("10", "20"):
    _damage(os.path.join(workdir, "checkpoints", step))
  with pytest.raises(ConfigError, match=r"No checkpoint in .*checkpoints restores.*--overwrite"):
    trainer.train_and_evaluate(config, workdir)


def test_a_damaged_best_checkpoint_is_a_one_line_error(short_run, tmp_path):
  from attn_research.inference.evaluation import evaluate_run

  run, config, _ = short_run
  workdir = _copy(run, tmp_path)
  _damage(os.path.join(workdir, "best"))
  with pytest.raises(ConfigError, match=r"best restores .*use another --checkpoint") as e:
    evaluate_run(workdir, config, "validation", checkpoint="best")
  assert "\n" not in str(e.value)
  result, _ = evaluate_run(workdir, config, "validation", checkpoint="latest")
  assert result["step"] == 20


def test_a_diverging_run_ends_diverged_and_is_not_rerun(synthetic_data_dir, tmp_path):
  """A learning rate of 10⁴ sends the loss past float range; the run records where and
  why instead of raising, and a rerun returns that record."""
  workdir = str(tmp_path / "run")
  config = short_synthetic_config(
    synthetic_data_dir, learning_rate=1e4, warmup_steps=0, grad_clip=0.0
  )
  result = trainer.train_and_evaluate(config, workdir)
  assert result["status"] == "diverged"
  assert 1 <= result["step"] <= 20 and "lower train.learning_rate" in result["error"]
  with open(os.path.join(workdir, "result.json")) as f:
    assert json.load(f)["status"] == "diverged"
  assert trainer.train_and_evaluate(config, workdir) == result


def test_the_clock_keeps_compilation_out_of_training_speed(tiny_run):
  """`train_tokens_per_second` counts every step's target tokens, recounted from the same
  batch plan, over train time, which excludes the compilation JAX reports; the run
  compiled one train program per batch shape it met, and more for evaluation."""
  from attn_research.data.pipeline import TrainBatches
  from attn_research.runs import Workdir
  from attn_research.training.data import prepare_data

  workdir, result = tiny_run
  config = tiny_config(result["config"]["dataset"]["data_dir"])
  data = prepare_data(config, Workdir(workdir, writer=False))
  batches = TrainBatches(data.splits["train"], data.buckets, config.train.batch_size, seed=0)
  shapes, tokens = set(), 0.0
  for _ in range(config.train.num_steps):
    batch = next(batches)
    shapes.add((batch["src"].shape, batch["tgt_in"].shape))
    tokens += float(batch["tgt_mask"].sum())
  assert result["train_tokens_per_second"] == pytest.approx(tokens / result["train_seconds"])
  assert result["train_shapes"] == len(shapes) > 1
  assert result["compilations"] > len(shapes)
  assert result["compile_seconds"] > 0 and result["eval_seconds"] > 0
  parts = sum(result[f"{k}_seconds"] for k in ("train", "compile", "eval", "checkpoint"))
  assert parts <= result["wall_seconds"]


def test_guided_alignment_pulls_the_attention_onto_the_gold_links(synthetic_data_dir, tmp_path):
  """synthetic/reverse, 60 steps: the gold links' cross-entropy is trained on and logged,
  and the validation AER ends well below the same run's without it."""
  results = {}
  for weight in (0.0, 3.0):
    config = short_synthetic_config(
      synthetic_data_dir, num_steps=60, log_every=30, warmup_steps=0, learning_rate=1e-2
    )
    config.dataset.name = "synthetic/reverse"
    config.train.guided_alignment = weight
    workdir = tmp_path / str(weight)
    results[weight] = trainer.train_and_evaluate(config, str(workdir))
    with open(workdir / "metrics.jsonl") as f:
      records = [json.loads(line) for line in f if "train_loss" in line]
    guided = [r.get("train_guided_alignment_loss") for r in records]
    if weight:
      assert guided[1] < 0.8 * guided[0], guided
    else:
      assert guided == [None, None]
  aer = {w: r["metrics"]["validation"]["aer"] for w, r in results.items()}
  assert aer[3.0] < aer[0.0] - 0.2, aer  # measured 0.53 vs 0.83


def test_guided_alignment_needs_gold_alignments(dates_data_dir, tmp_path):
  config = tiny_config(dates_data_dir, guided_alignment=1.0)
  with pytest.raises(ConfigError, match=r"train\.guided_alignment needs gold alignments"):
    trainer.train_and_evaluate(config, str(tmp_path))


class _PreemptAfter(Preemption):
  """SIGTERM as the trainer would catch it, after `steps` train steps."""

  def __init__(self, steps: int):
    super().__init__()
    self.calls, self.steps = 0, steps

  def stop(self, at_log_step: bool) -> str | None:
    self.calls += 1  # once during setup, then once per step
    return "SIGTERM" if self.calls > self.steps else None


def test_early_stopping_and_plateau_decays_resume_the_same_decisions(
  dates_data_dir, tmp_path, monkeypatch
):
  """Exact match cannot improve by more than 1: every validation after the first counts
  against patience, so the plateau schedule halves the rate at steps 50 and 75 and early
  stopping ends the run at 75; a run preempted at step 60 resumes to the same end."""
  config = _config(
    dates_data_dir,
    eval_every=25,
    schedule="plateau",
    decay_metric="validation.exact_match",
    decay_min_delta=1.0,
  )
  config.train.early_stopping.update(metric="validation.exact_match", patience=2, min_delta=1.0)
  straight = trainer.train_and_evaluate(config, str(tmp_path / "straight"))
  assert straight["status"] == "completed" and straight["steps"] == 75
  reason = straight["stopped_early"]["reason"]
  assert straight["stopped_early"]["step"] == 75
  assert reason.startswith("validation.exact_match did not improve on its best (")
  assert reason.endswith(" at step 25) by more than 1 for 2 validations")

  monkeypatch.setattr(trainer, "Preemption", lambda: _PreemptAfter(60))
  workdir = str(tmp_path / "preempted")
  assert trainer.train_and_evaluate(config, workdir)["status"] == "preempted"
  monkeypatch.setattr(trainer, "Preemption", Preemption)
  resumed = trainer.train_and_evaluate(config, workdir)
  assert resumed["metrics"] == straight["metrics"]
  assert resumed["stopped_early"] == straight["stopped_early"]

  def records(path):
    with open(os.path.join(path, "metrics.jsonl")) as f:
      return [json.loads(line) for line in f if "train_loss" in line]

  logged = records(tmp_path / "straight")
  assert [r["step"] for r in logged] == [25, 50, 75]
  # The rate of the steps after each logged one: 1e-2 after warm-up, halved after 50.
  assert [r["learning_rate"] for r in logged] == pytest.approx([1e-2, 1e-2, 5e-3])
  epochs = [r["epoch"] / r["step"] for r in logged]
  assert epochs == pytest.approx([epochs[0]] * 3) and 0 < epochs[0] < 1 / 75
  resumed_log = records(workdir)  # the preempted run logged its part-interval at 60 too
  assert [r["step"] for r in resumed_log] == [25, 50, 60, 75]
  assert [r["learning_rate"] for r in resumed_log] == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3])
  provenance = straight["provenance"]
  assert provenance["versions"]["jax"] == jax.__version__ and provenance["devices"]["count"] == 8
  assert provenance["command"] and "xla_force_host_platform_device_count" in provenance["xla_flags"]
