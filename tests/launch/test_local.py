import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import ml_collections
import pytest

from attn_research import runs
from attn_research.errors import ConfigError
from launch import local, sweep
from tests.conftest import REPO, run_module

# A stand-in for experiments.train: logs its start and end to ROOT/events.txt, sleeps
# (unless ROOT/fast exists), fails if asked (unless ROOT/fixed exists), else writes a
# completed result.json.
FAKE_TRAIN = """
import json, os, sys, time
workdir, overrides = sys.argv[1], json.loads(sys.argv[2])
root, name = os.path.dirname(workdir), os.path.basename(workdir)
def event(kind):
  with open(os.path.join(root, "events.txt"), "a") as f:
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    cpus = sorted(os.sched_getaffinity(0))
    f.write(json.dumps([kind, name, time.time(), os.getpid(), devices, cpus]) + "\\n")
event("start")
print("training", name)
if not os.path.exists(os.path.join(root, "fast")):
  time.sleep(overrides.get("sleep", 0.0))
if overrides.get("fail") and not os.path.exists(os.path.join(root, "fixed")):
  print("\\n".join(f"line {i}" for i in range(100)), file=sys.stderr)
  sys.exit(3)
with open(os.path.join(workdir, "result.json"), "w") as f:
  json.dump({"status": "completed"}, f)
event("end")
"""


def _base() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"seed": 0, "sleep": 0.0, "fail": False, "preempt": False})


def _trials(sweep_: list[dict]) -> list[sweep.Trial]:
  return sweep.make_trials("fake.py", _base(), sweep_)


@pytest.fixture
def fake(tmp_path) -> local.Command:
  script = tmp_path / "fake_train.py"
  script.write_text(FAKE_TRAIN)
  return lambda trial, workdir: [
    sys.executable,
    str(script),
    workdir,
    json.dumps(trial.overrides),
  ]


def _events(root) -> list[list]:
  path = os.path.join(root, "events.txt")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def _intervals(root, field: int = 4) -> dict[str, tuple[float, float, Any]]:
  """Each trial's (start, end, its event's `field`: 4 GPUs, 5 CPU cores)."""
  starts = {e[1]: e for e in _events(root) if e[0] == "start"}
  return {e[1]: (starts[e[1]][2], e[2], e[field]) for e in _events(root) if e[0] == "end"}


def _max_overlap(intervals) -> int:
  times = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
  running = peak = 0
  for _, step in times:
    running += step
    peak = max(peak, running)
  return peak


def _run(trials, root, command, **kwargs) -> local.Summary:
  return local.run_local(
    trials, str(root), command=command, report=lambda _: None, poll_seconds=0.02, **kwargs
  )


def test_runs_parallel_at_a_time_then_skips_finished(tmp_path, fake):
  root = tmp_path / "sweep"
  trials = _trials(sweep.product(sweep.seeds(4), sweep.fixed("sleep", 0.5)))
  summary = _run(trials, root, fake, parallel=2)
  names = [t.name for t in trials]
  assert summary.skipped == summary.failed == []
  assert sorted(summary.completed) == sorted(names)
  assert _max_overlap(_intervals(root).values()) == 2
  assert "training seed=0_sleep=0.5" in (root / names[0] / "train.log").read_text()
  manifest = json.loads((root / "sweep.json").read_text())
  assert manifest["config"] == "fake.py"
  assert manifest["trials"][1] == {"name": names[1], "overrides": {"seed": 1, "sleep": 0.5}}

  again = _run(trials, root, fake, parallel=2)
  assert again == local.Summary(completed=[], skipped=names, failed=[])
  assert len(_events(root)) == 8  # 4 starts, 4 ends: nothing ran again


def test_a_failed_trial_is_recorded_and_the_others_complete(tmp_path, fake):
  root = tmp_path / "sweep"
  trials = _trials([{"seed": 0}, {"seed": 1, "fail": True}, {"seed": 2}])
  summary = _run(trials, root, fake, parallel=2)
  assert summary.failed == ["seed=1_fail=true"]
  assert sorted(summary.completed) == ["seed=0", "seed=2"]
  failed = json.loads((root / "seed=1_fail=true" / runs.FAILED).read_text())
  assert failed["returncode"] == 3
  command = fake(trials[1], trials[1].workdir(str(root)))
  assert failed["command"][-len(command) :] == command  # after `taskset -c N` when pinned
  lines = failed["error"].splitlines()
  assert len(lines) == local.ERROR_LINES and lines[-1] == "line 99" and lines[0] == "line 60"

  (root / "fixed").touch()
  rerun = _run(trials, root, fake, parallel=2)
  assert rerun == local.Summary(completed=["seed=1_fail=true"], skipped=["seed=0", "seed=2"])
  assert not (root / "seed=1_fail=true" / runs.FAILED).exists()
  log = (root / "seed=1_fail=true" / runs.LOG).read_text()
  assert log.count("=== ") == 2  # both attempts, appended


def test_exit_zero_without_result_counts_as_failed(tmp_path):
  trials = _trials([{"seed": 1}])
  summary = _run(trials, tmp_path, lambda t, w: [sys.executable, "-c", "print('hi')"])
  assert summary.failed == ["seed=1"]
  failed = json.loads((tmp_path / "seed=1" / runs.FAILED).read_text())
  assert failed["returncode"] == 0 and "without a finished result.json" in failed["error"]


def test_trials_are_pinned_to_their_own_devices(tmp_path, fake):
  root = tmp_path / "sweep"
  trials = _trials(sweep.product(sweep.seeds(4), sweep.fixed("sleep", 0.3)))
  _run(trials, root, fake, parallel=2, devices=["0", "1", "2", "3"], devices_per_trial=2)
  intervals = list(_intervals(root).values())
  assert {d for _, _, d in intervals} <= {"0,1", "2,3"} and len(intervals) == 4
  for i, (s1, e1, d1) in enumerate(intervals):
    for s2, e2, d2 in intervals[i + 1 :]:
      assert d1 != d2 or e1 <= s2 or e2 <= s1  # overlapping trials have their own GPUs


def test_cpu_trials_are_pinned_to_their_own_cores(tmp_path, fake, monkeypatch):
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
  cpus = local.usable_cpus()
  if len(cpus) < 2 or not shutil.which("taskset"):
    pytest.skip("needs 2 CPU cores to share out and util-linux's taskset")
  trials = _trials(sweep.product(sweep.seeds(4), sweep.fixed("sleep", 0.3)))
  _run(trials, tmp_path, fake, parallel=2)
  intervals = list(_intervals(tmp_path, field=5).values())
  halves = [cpus[: len(cpus) // 2], cpus[len(cpus) // 2 :]]
  assert len(intervals) == 4 and all(c in halves for _, _, c in intervals)
  assert _max_overlap(intervals) == 2
  for i, (s1, e1, c1) in enumerate(intervals):
    for s2, e2, c2 in intervals[i + 1 :]:
      assert c1 != c2 or e1 <= s2 or e2 <= s1  # overlapping trials have their own cores
  assert {e[4] for e in _events(tmp_path)} == {"-"}
  log = (tmp_path / trials[0].name / runs.LOG).read_text()
  assert re.search(r"^=== [\d-]+ [\d:]+ taskset -c \d", log, re.M)  # the pinning, rerunnable


def test_a_lone_cpu_trial_keeps_every_core(tmp_path, fake, monkeypatch):
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
  _run(_trials([{"seed": 1}]), tmp_path, fake, parallel=2)
  assert _events(tmp_path)[0][5] == local.usable_cpus()


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs util-linux's taskset")
def test_slots():
  assert local.slots([], 1, 1, cpus=[0, 1]) == [local.Slot()]
  assert local.slots([], 1, 2, cpus=[0, 1, 2]) == [local.Slot(cpus=(0,)), local.Slot(cpus=(1, 2))]
  assert local.slots([], 1, 3, cpus=[0, 1]) == [local.Slot()] * 3  # more trials than cores
  assert local.slots(["0", "1", "2"], 1, 2, cpus=[0, 1]) == [
    local.Slot(gpus=("0",)),
    local.Slot(gpus=("1",)),
  ]
  assert local.Slot(gpus=("0", "1")).prefix() == "CUDA_VISIBLE_DEVICES=0,1 "
  assert local.Slot(cpus=(2, 3)).prefix() == "taskset -c 2,3 "
  with pytest.raises(ConfigError, match="need 4 devices, but 3 are visible"):
    local.slots(["0", "1", "2"], 2, 2)
  with pytest.raises(ConfigError, match="at least 1"):
    local.slots([], 1, 0)


def test_auto_parallel_fills_the_gpus_or_the_cores():
  assert local.auto_parallel(["0", "1", "2", "3"], 2, cpus=range(16)) == 2
  assert local.auto_parallel([], 1, cpus=[0, 1]) == 2
  assert local.auto_parallel(["0"], 2, cpus=[0, 1]) == 1


def test_visible_gpus_reads_cuda_visible_devices():
  assert local.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == ["0", "2"]
  assert local.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
  assert local.visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


LAUNCHER = """
import json, sys
import ml_collections
from launch import local, sweep
root, script = sys.argv[1], sys.argv[2]
base = ml_collections.ConfigDict({"seed": 0, "sleep": 0.0, "fail": False})
trials = sweep.make_trials("fake.py", base, json.loads(sys.argv[3]))
command = lambda t, w: [sys.executable, script, w, json.dumps(t.overrides)]
try:
  local.run_local(trials, root, parallel=2, command=command, poll_seconds=0.02)
except KeyboardInterrupt:
  sys.exit(130)
"""


def test_killing_the_launcher_stops_trials_and_a_rerun_resumes(tmp_path, fake):
  root = tmp_path / "sweep"
  script = fake(_trials([{}])[0], "")[1]
  sweep_ = [{"seed": 0, "sleep": 0.1}, *({"seed": s, "sleep": 120.0} for s in (1, 2, 3))]
  launcher = subprocess.Popen(
    [sys.executable, "-c", LAUNCHER, str(root), script, json.dumps(sweep_)],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  deadline = time.monotonic() + 60
  while len([e for e in _events(root) if e[0] == "start"]) < 3:  # seed 0 done, 1 and 2 on
    assert time.monotonic() < deadline and launcher.poll() is None, launcher.stdout.read()
    time.sleep(0.05)
  launcher.send_signal(signal.SIGTERM)
  output = launcher.communicate(timeout=30)[0]
  assert launcher.returncode == 130, output
  assert "interrupted: stopping 2 running trials" in output
  killed = [e for e in _events(root) if e[0] == "start" and e[1] != "seed=0_sleep=0.1"]
  assert [e[1] for e in killed] == ["seed=1_sleep=120.0", "seed=2_sleep=120.0"]
  for event in killed:
    with pytest.raises(ProcessLookupError):
      os.kill(event[3], 0)
    assert not (root / event[1] / runs.FAILED).exists()  # stopped, not failed

  (root / "fast").touch()
  trials = _trials(sweep_)
  summary = _run(trials, root, fake, parallel=2)
  assert summary.skipped == ["seed=0_sleep=0.1"]
  assert sorted(summary.completed) == [t.name for t in trials[1:]]
  starts = [e[1] for e in _events(root) if e[0] == "start"]
  assert starts.count("seed=0_sleep=0.1") == 1  # the finished trial did not run again
  assert starts.count("seed=1_sleep=120.0") == 2


def test_cli_dry_run_lists_the_commands_and_skips_finished(tmp_path):
  done = tmp_path / "type=luong_seed=1"
  done.mkdir()
  (done / "result.json").write_text('{"status": "completed"}')
  result = run_module(
    "experiments.sweep",
    "--config=experiments/configs/synthetic.py:reverse",
    f"--root={tmp_path}",
    "--dry_run",
    "--devices=",
  )
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert "# type=luong_seed=1: completed, skipped" in lines
  commands = [line for line in lines if not line.startswith("#")]
  assert len(commands) == 3
  assert commands[0].endswith(
    "-m experiments.train --config=experiments/configs/synthetic.py:reverse "
    f"--workdir={tmp_path}/type=luong_seed=0 --config.model.decoder.type=luong --config.seed=0"
  )
  assert sorted(os.listdir(tmp_path)) == ["type=luong_seed=1"]  # a dry run writes nothing


def test_cli_names_a_config_without_sweep(tmp_path):
  result = run_module(
    "experiments.sweep", "--config=experiments/configs/dates.py", f"--root={tmp_path}", "--dry_run"
  )
  assert result.returncode == 2
  assert result.stderr.startswith("error: experiments/configs/dates.py defines no get_sweep")
  assert "Traceback" not in result.stderr


# A stand-in for experiments.train that holds the trial's workdir as the trainer does:
# refused while another process holds it, a no-op on a finished run; logs its pid to
# trained.txt, or exits preempted if asked.
LOCKED_TRAIN = f"""
import json, os, sys, time
sys.path.insert(0, {REPO!r})
from attn_research import run_lock, runs
workdir, overrides = sys.argv[1], json.loads(sys.argv[2])
try:
  with run_lock.hold(workdir, print):
    if os.path.exists(os.path.join(workdir, "result.json")):
      sys.exit(0)
    with open(os.path.join(workdir, "trained.txt"), "a") as f:
      f.write(f"{{os.getpid()}}\\n")
    time.sleep(2.0)  # much longer than a starting holder retries for
    if overrides.get("preempt"):
      sys.exit(runs.EXIT_PREEMPTED)
    with open(os.path.join(workdir, "result.json"), "w") as f:
      json.dump({{"status": "completed"}}, f)
except run_lock.WorkdirHeldError as e:
  print(e)
  sys.exit(runs.EXIT_HELD)
"""


@pytest.fixture
def locked(tmp_path) -> local.Command:
  script = tmp_path / "locked_train.py"
  script.write_text(LOCKED_TRAIN)
  return lambda trial, workdir: [sys.executable, str(script), workdir, json.dumps(trial.overrides)]


def test_two_launchers_on_one_root_train_every_trial_once(tmp_path, locked):
  import threading

  root = tmp_path / "sweep"
  trials = _trials(sweep.seeds(4))
  summaries, lines = {}, {"a": [], "b": []}

  def launch(name: str) -> None:
    summaries[name] = local.run_local(
      trials, str(root), parallel=2, command=locked, report=lines[name].append, poll_seconds=0.02
    )

  threads = [threading.Thread(target=launch, args=(name,)) for name in "ab"]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(timeout=120)
  for trial in trials:
    trained = (root / trial.name / "trained.txt").read_text().split()
    assert len(trained) == 1, (trial.name, lines)
  names = sorted(t.name for t in trials)
  for a in "ab":
    assert summaries[a].failed == [] and summaries[a].skipped == []
    # Each launcher ends with every trial finished: by itself or by the other one.
    assert sorted(summaries[a].completed + summaries[a].elsewhere) == names, lines
  waited = [line for line in lines["a"] + lines["b"] if "; waiting for it" in line]
  assert waited and all(re.search(r" is held by (pid \d+ on |another process)", w) for w in waited)


def test_a_preempted_trial_is_not_a_failure_and_resumes_on_the_next_launch(tmp_path, locked):
  root = tmp_path / "sweep"
  trials = _trials([{"seed": 0}, {"seed": 1, "preempt": True}])
  summary = _run(trials, root, locked)
  assert summary.completed == ["seed=0"] and summary.preempted == ["seed=1_preempt=true"]
  assert summary.failed == [] and not (root / "seed=1_preempt=true" / runs.FAILED).exists()
  assert str(summary) == "1 completed, 0 skipped (already finished), 1 preempted, 0 failed"
