"""One run over two processes (`jax.distributed`, gloo on CPU) matches a one-process run."""

import json
import os
import re
import socket
import subprocess

import jax
import numpy as np
import pytest

from attn_research.errors import ConfigError
from attn_research.training import distributed, parallel, trainer
from tests.conftest import DATES_SIZES, REPO, tiny_config, tiny_train_command

# Small enough to run in well under a minute: one bucket shape (one compilation per step
# function), a checkpoint mid-run, and the final evaluation of the validation split.
OVERRIDES = {
  "train.num_steps": 20,
  "train.log_every": 5,
  "train.eval_every": 1000,
  "train.checkpoint_every": 10,
  "data.source_buckets": (40,),
  "eval.splits": ("validation",),
  "eval.num_heatmaps": 0,
}
NUM_PROCESSES, LOCAL_DEVICES = 2, 2  # a 4-device mesh; each process feeds half of a batch


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(data_dir: str, workdir: str) -> list[subprocess.Popen]:
  address = f"localhost:{_free_port()}"
  command = [
    *tiny_train_command(workdir, data_dir),
    *(f"--config.{key}={value!r}" for key, value in OVERRIDES.items()),
    f"--coordinator_address={address}",
    f"--num_processes={NUM_PROCESSES}",
  ]
  env = {
    **os.environ,
    "PYTHONPATH": REPO,
    "XLA_FLAGS": os.environ["XLA_FLAGS"].replace("device_count=8", f"device_count={LOCAL_DEVICES}"),
  }
  return [
    subprocess.Popen(
      [*command, f"--process_id={i}"],
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(NUM_PROCESSES)
  ]


def _summaries(stdout: str) -> list[dict]:
  """The JSON summaries in a process's stdout. Gloo prints its connection lines to the
  same stdout from its own threads, in pieces that may interleave with each other; the
  summary is one write of a few hundred bytes, which a pipe keeps whole."""
  decoder, found = json.JSONDecoder(), []
  for match in re.finditer(r'\{\s*"workdir"', stdout):
    found.append(decoder.raw_decode(stdout, match.start())[0])
  return found


def _run_files(workdir: str) -> tuple[list[float], dict, str]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    losses = [json.loads(line)["train_loss"] for line in f if "train_loss" in line]
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  with open(os.path.join(workdir, "hypotheses.validation.txt")) as f:
    return losses, config, f.read()


def test_two_processes_train_like_one(dates_data_dir, tmp_path):
  """Both processes finish, process 0 alone writes and prints, and the run's losses and
  decoded hypotheses equal those of one process with the same 4 devices (measured: the
  loss curves are bitwise equal; the test allows the 1-vs-8-device tolerance)."""
  processes = _launch(dates_data_dir, str(tmp_path / "multi"))
  # The reference runs meanwhile, in this process, on a 4-device mesh.
  config = tiny_config(dates_data_dir)
  for key, value in OVERRIDES.items():
    section, name = key.split(".")
    setattr(config[section], name, value)
  mesh = parallel.make_mesh(jax.devices()[: NUM_PROCESSES * LOCAL_DEVICES])
  try:
    reference = trainer.train_and_evaluate(config, str(tmp_path / "single"), mesh=mesh)
    outputs = [p.communicate(timeout=300) for p in processes]
  finally:
    for p in processes:
      p.kill()
  for p, (_, stderr) in zip(processes, outputs, strict=True):
    assert p.returncode == 0, stderr[-3000:]
  summaries = [_summaries(stdout) for stdout, _ in outputs]
  assert [len(s) for s in summaries] == [1, 0]  # process 0 alone prints the summary
  assert summaries[0][0]["metrics"]["validation"]["num_examples"] == DATES_SIZES["validation"]

  losses, config_json, hypotheses = _run_files(str(tmp_path / "multi"))
  ref_losses, ref_config_json, ref_hypotheses = _run_files(str(tmp_path / "single"))
  assert config_json == ref_config_json  # the flags and the overrides above agree
  assert len(losses) == 4
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
  assert hypotheses == ref_hypotheses  # process 0 decoded the rows of both processes
  with open(tmp_path / "multi" / "result.json") as f:
    metrics = json.load(f)["metrics"]["validation"]
  assert metrics["exact_match"] == reference["metrics"]["validation"]["exact_match"]
  np.testing.assert_allclose(metrics["ppl"], reference["metrics"]["validation"]["ppl"], rtol=1e-5)
  assert sorted(os.listdir(tmp_path / "multi" / "checkpoints")) == ["10", "20"]


@pytest.fixture
def no_slurm(monkeypatch):
  for name in distributed.SLURM_VARS:
    monkeypatch.delenv(name, raising=False)


def test_one_process_initialises_nothing(no_slurm):
  assert not distributed.initialize()
  assert not distributed.initialize(num_processes=1)


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"process_id": 1}, "need --num_processes > 1"),
    ({"coordinator_address": "localhost:1234"}, "need --num_processes > 1"),
    ({"num_processes": 0}, "must be at least 1"),
    ({"num_processes": 2, "process_id": 2}, r"must be in \[0, 1\]"),
    ({"num_processes": 2, "process_id": 0, "coordinator_address": "localhost"}, "host:port"),
  ],
)
def test_bad_distributed_flags_are_refused(no_slurm, kwargs, message):
  with pytest.raises(ConfigError, match=message):
    distributed.initialize(**kwargs)


def test_slurm_tasks_come_from_the_environment(no_slurm, monkeypatch):
  assert distributed.slurm_tasks() == 0
  for name, value in zip(distributed.SLURM_VARS, ("7", "node[1-2]", "2", "1", "0"), strict=True):
    monkeypatch.setenv(name, value)
  assert distributed.slurm_tasks() == 2
