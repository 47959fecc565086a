import json
import os
import shlex
import signal
import subprocess
import sys
import time

import ml_collections
import pytest

from attn_research import runs
from attn_research.errors import ConfigError
from launch import slurm, sweep
from tests.conftest import REPO

# A stand-in for experiments.train that records the arguments it got.
FAKE_TRAIN = """
import json, os, sys
workdir = sys.argv[1].removeprefix("--workdir=")
os.makedirs(workdir, exist_ok=True)
with open(os.path.join(workdir, "argv.json"), "w") as f:
  json.dump({"argv": sys.argv[1:], "setup": os.environ.get("FAKE_SETUP")}, f)
"""


def _trials() -> list[sweep.Trial]:
  base = ml_collections.ConfigDict({"seed": 0, "name": "x", "splits": ("validation",)})
  return sweep.make_trials(
    "fake.py:arg",
    base,
    sweep.product(
      sweep.zip_(sweep.axis("name", ["a b", "it's"]), sweep.axis("splits", [("test",), ()])),
      sweep.seeds(2),
    ),
  )


def _script(root) -> str:
  return (root / slurm.SCRIPT).read_text()


def test_script_runs_an_array_of_trials(tmp_path):
  options = slurm.SlurmOptions(
    partition="gpu",
    time="12:00:00",
    gpus_per_task=2,
    cpus_per_task=8,
    mem="64G",
    sbatch=("--account=nlp", "#SBATCH --qos=high"),
    setup="source .venv/bin/activate",
  )
  script_file, pending = slurm.write_job(_trials(), str(tmp_path), options, parallel=3)
  assert script_file == str(tmp_path / slurm.SCRIPT) and len(pending) == 4
  script = _script(tmp_path)
  for line in [
    "#SBATCH --job-name=fake-arg",
    "#SBATCH --array=0-3%3",
    f"#SBATCH --output={tmp_path}/slurm/%A_%a.out",
    "#SBATCH --nodes=1",
    "#SBATCH --gpus-per-task=2",
    "#SBATCH --cpus-per-task=8",
    "#SBATCH --partition=gpu",
    "#SBATCH --time=12:00:00",
    "#SBATCH --mem=64G",
    "#SBATCH --account=nlp",
    "#SBATCH --qos=high",
    "#SBATCH --signal=B:USR1@180",
    "#SBATCH --requeue",
    "#SBATCH --open-mode=append",
    "source .venv/bin/activate",
    f"cd {shlex.quote(os.getcwd())}",
    'bash -c "exec $command" &',
    """trap 'kill -USR1 "$child" 2> /dev/null || true' USR1""",
    """trap 'kill -TERM "$child" 2> /dev/null || true' TERM""",
    f'if [ "$status" -eq {runs.EXIT_PREEMPTED} ]; then',
    '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
  ]:
    assert line in script.splitlines(), line
  assert "srun" not in script
  lines = (tmp_path / slurm.TRIALS).read_text().splitlines()
  assert [shlex.split(line) for line in lines] == [
    slurm.cluster_command(t, t.workdir(str(tmp_path))) for t in _trials()
  ]
  assert lines[0].startswith("python -m experiments.train --config=fake.py:arg --workdir=")
  assert lines[0].endswith(
    " '--config.name=a b' '--config.splits=('\"'\"'test'\"'\"',)' --config.seed=0"
  )
  assert json.loads((tmp_path / sweep.MANIFEST).read_text())["config"] == "fake.py:arg"


def test_finished_trials_are_left_out(tmp_path):
  trials = _trials()
  done = tmp_path / trials[1].name
  done.mkdir()
  (done / "result.json").write_text('{"status": "completed"}')
  _, pending = slurm.write_job(trials, str(tmp_path), slurm.SlurmOptions(gpus_per_task=0))
  assert pending == [trials[0], *trials[2:]]
  assert "#SBATCH --array=0-2\n" in _script(tmp_path)  # parallel 0: no throttle
  assert "gpus-per-task" not in _script(tmp_path)
  assert f"--workdir={done}" not in (tmp_path / slurm.TRIALS).read_text()
  for trial in trials:
    (tmp_path / trial.name).mkdir(exist_ok=True)
    (tmp_path / trial.name / "result.json").write_text('{"status": "completed"}')
  assert slurm.write_job(trials, str(tmp_path), slurm.SlurmOptions()) is None


def test_multi_node_trials_run_through_srun(tmp_path):
  slurm.write_job(_trials(), str(tmp_path), slurm.SlurmOptions(nodes=2), parallel=1)
  script = _script(tmp_path).splitlines()
  assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=1" in script
  assert 'bash -c "exec srun $command" &' in script
  with pytest.raises(ConfigError, match="at least 1"):
    slurm.write_job(_trials(), str(tmp_path), slurm.SlurmOptions(nodes=0))


def test_an_array_task_runs_its_own_trial_with_its_arguments(tmp_path):
  fake = tmp_path / "fake_train.py"
  fake.write_text(FAKE_TRAIN)
  trials = _trials()

  def command(trial: sweep.Trial, workdir: str) -> list[str]:
    return [sys.executable, str(fake), *trial.train_args(workdir)[1:]]  # from --workdir on

  options = slurm.SlurmOptions(setup="export FAKE_SETUP=yes")
  root = tmp_path / "sweep"
  script_file, _ = slurm.write_job(trials, str(root), options, command=command, chdir=str(tmp_path))
  env = {**os.environ, "SLURM_ARRAY_TASK_ID": "2"}
  result = subprocess.run(["bash", script_file], env=env, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  ran = [t for t in trials if (root / t.name / "argv.json").exists()]
  assert ran == [trials[2]]
  recorded = json.loads((root / trials[2].name / "argv.json").read_text())
  assert recorded == {"argv": command(trials[2], trials[2].workdir(str(root)))[2:], "setup": "yes"}

  # A trials.txt rewritten after the script was generated is refused, not misread.
  (root / slurm.TRIALS).write_text((root / slurm.TRIALS).read_text().replace("seed=1", "seed=9"))
  result = subprocess.run(["bash", script_file], env=env, capture_output=True, text=True)
  assert result.returncode != 0 and "changed since this job was generated" in result.stderr


# A stand-in for a trial that checkpoints and exits preempted on SIGUSR1.
PREEMPTIBLE = f"""
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *_: sys.exit({runs.EXIT_PREEMPTED}))
open(sys.argv[1], "w").close()
time.sleep(60)
"""


@pytest.mark.parametrize("preempted", [True, False])
def test_an_array_task_passes_the_early_signal_on_and_requeues_a_preempted_trial(
  tmp_path, preempted
):
  trial_file = tmp_path / "trial.py"
  trial_file.write_text(PREEMPTIBLE if preempted else "import sys; open(sys.argv[1], 'w')")
  started = tmp_path / "started"
  scontrol = tmp_path / "bin" / "scontrol"
  scontrol.parent.mkdir()
  scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.txt"}\n')
  scontrol.chmod(0o755)
  trials = _trials()[:1]
  script_file, _ = slurm.write_job(
    trials,
    str(tmp_path / "sweep"),
    slurm.SlurmOptions(gpus_per_task=0),
    command=lambda trial, workdir: [sys.executable, str(trial_file), str(started)],
    chdir=str(tmp_path),
  )
  env = {
    **os.environ,
    "PATH": f"{scontrol.parent}:{os.environ['PATH']}",
    "SLURM_ARRAY_JOB_ID": "42",
    "SLURM_ARRAY_TASK_ID": "0",
  }
  task = subprocess.Popen(["bash", script_file], env=env, stdout=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 60
  while not started.exists():
    assert time.monotonic() < deadline and (task.poll() is None or not preempted)
    time.sleep(0.02)
  if preempted:
    task.send_signal(signal.SIGUSR1)  # what SLURM sends signal_seconds before the limit
  output = task.communicate(timeout=60)[0]
  if preempted:
    assert task.returncode == runs.EXIT_PREEMPTED
    assert "trial 0 checkpointed and stopped; requeueing it" in output
    assert (tmp_path / "scontrol.txt").read_text() == "requeue 42_0\n"
  else:
    assert task.returncode == 0 and not (tmp_path / "scontrol.txt").exists()


def test_submit_without_sbatch_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(ConfigError, match=r"sbatch is not on PATH; submit x\.sbatch"):
    slurm.submit("x.sbatch")


def test_cli_dry_run_prints_the_script(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.sweep",
      "--config=experiments/configs/synthetic.py:reverse",
      f"--root={tmp_path}",
      "--launcher=slurm",
      "--parallel=2",
      "--slurm.partition=gpu",
      "--dry_run",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"4 of 4 trials to run; wrote {tmp_path}/sweep.sbatch\n")
  assert "#SBATCH --array=0-3%2\n" in result.stdout and "#SBATCH --partition=gpu\n" in result.stdout
  assert (tmp_path / slurm.TRIALS).read_text().count("\n") == 4
