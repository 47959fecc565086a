"""Runs a sweep's trials on this machine, one subprocess each, `parallel` at a time.

Every trial runs in ROOT/<name> and logs to its train.log. Finished trials (completed or
diverged) are skipped, so rerunning a sweep resumes it: killed trials restart from their
checkpoints. A failed trial leaves ROOT/<name>/failed.json and the others go on.
With GPUs, each trial sees only its own `devices_per_trial` of them through
CUDA_VISIBLE_DEVICES; the caller lists the devices, so nothing here initialises jax.
"""

import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

from attn_research import runs
from attn_research.errors import ConfigError
from launch.sweep import Trial, train_command, write_manifest

ERROR_LINES = 40  # lines of a failed trial's output kept in failed.json
Command = Callable[[Trial, str], list[str]]  # (trial, its workdir) → argv


@dataclasses.dataclass
class Summary:
  """Trial names by outcome of one launch."""

  completed: list[str] = dataclasses.field(default_factory=list)
  skipped: list[str] = dataclasses.field(default_factory=list)
  failed: list[str] = dataclasses.field(default_factory=list)
  diverged: list[str] = dataclasses.field(default_factory=list)

  def __str__(self) -> str:
    line = f"{len(self.completed)} completed, {len(self.skipped)} skipped (already finished)"
    line += f", {len(self.diverged)} diverged" if self.diverged else ""
    line += f", {len(self.failed)} failed"
    return line + (f": {', '.join(self.failed)}" if self.failed else "")


def visible_gpus(environ: dict[str, str] | None = None) -> list[str]:
  """GPU ids to share out: $CUDA_VISIBLE_DEVICES if set, else nvidia-smi's, else none."""
  environ = os.environ if environ is None else environ
  if "CUDA_VISIBLE_DEVICES" in environ:
    ids = [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    return [] if ids == ["-1"] else ids
  if not shutil.which("nvidia-smi"):
    return []
  query = ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"]
  result = subprocess.run(query, capture_output=True, text=True, check=False)
  return result.stdout.split() if result.returncode == 0 else []


def device_groups(
  devices: Sequence[str], devices_per_trial: int, parallel: int
) -> list[tuple[str, ...]]:
  """Disjoint device sets, one per concurrent trial; none (unpinned) without devices."""
  if parallel < 1 or devices_per_trial < 1:
    raise ConfigError("--parallel and --devices_per_trial must be at least 1.")
  if not devices:
    return [()] * parallel
  if parallel * devices_per_trial > len(devices):
    raise ConfigError(
      f"{parallel} trials at a time × {devices_per_trial} devices each need "
      f"{parallel * devices_per_trial} devices, but {len(devices)} are visible "
      f"({','.join(devices)}); lower --parallel or --devices_per_trial."
    )
  return [
    tuple(devices[i * devices_per_trial : (i + 1) * devices_per_trial]) for i in range(parallel)
  ]


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
  """SIGTERM raises KeyboardInterrupt like SIGINT, so both stop the children."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")

  previous = signal.signal(signal.SIGTERM, interrupt)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


@dataclasses.dataclass
class _Running:
  trial: Trial
  process: subprocess.Popen
  devices: tuple[str, ...]
  command: list[str]
  log_offset: int  # where this attempt's output starts in train.log
  started: float


def _start(trial: Trial, root: str, devices: tuple[str, ...], command: Command) -> _Running:
  workdir = trial.workdir(root)
  os.makedirs(workdir, exist_ok=True)
  argv = command(trial, workdir)
  env = dict(os.environ)
  if devices:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
  with open(os.path.join(workdir, runs.LOG), "ab") as log:
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
    log.flush()
    # A session of its own: a terminal's Ctrl-C reaches only the launcher, which then
    # stops each trial's whole process group.
    process = subprocess.Popen(
      argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    return _Running(trial, process, devices, argv, log.tell(), time.monotonic())


def _output_tail(workdir: str, offset: int) -> str:
  with open(os.path.join(workdir, runs.LOG), "rb") as f:
    f.seek(offset)
    lines = f.read().decode("utf-8", errors="replace").splitlines()  # splits tqdm's \r too
  return "\n".join(lines[-ERROR_LINES:])


def _finish(run: _Running, root: str) -> str:
  """Records the outcome of an exited trial: completed, diverged or failed."""
  workdir = run.trial.workdir(root)
  status = runs.read_run(workdir).status
  if status in runs.FINISHED:
    runs.clear_failure(workdir)
    return status
  error = _output_tail(workdir, run.log_offset)
  if run.process.returncode == 0:
    error += f"\n(exited 0 without a finished {runs.RESULT})"
  record = {"error": error, "returncode": run.process.returncode, "command": run.command}
  runs.record_failure(workdir, record)
  return runs.FAILED_STATUS


def _stop(running: Sequence[_Running], grace_seconds: float) -> None:
  """SIGTERM to each trial's process group, SIGKILL to those alive after the grace."""
  for run in running:
    with suppress(ProcessLookupError):
      os.killpg(run.process.pid, signal.SIGTERM)
  deadline = time.monotonic() + grace_seconds
  for run in running:
    try:
      run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      os.killpg(run.process.pid, signal.SIGKILL)
      run.process.wait()


def run_local(
  trials: Sequence[Trial],
  root: str,
  *,
  parallel: int = 1,
  devices: Sequence[str] = (),
  devices_per_trial: int = 1,
  command: Command = train_command,
  report: Callable[[str], None] = print,
  poll_seconds: float = 0.2,
  grace_seconds: float = 30.0,
) -> Summary:
  """Runs the unfinished `trials` under `root`, `parallel` at a time.

  Args:
    trials: the sweep, e.g. from `launch.sweep.load_sweep`.
    root: the sweep directory; trial `t` runs in `root/t.name`.
    parallel: trials running at once.
    devices: GPU ids to share out (e.g. `visible_gpus()`); empty: no pinning (CPU).
    devices_per_trial: GPUs each trial gets.
    command: builds a trial's argv from the trial and its workdir.
    report: receives one line per trial event.
    poll_seconds: how often to check for exited trials.
    grace_seconds: how long stopped trials get to exit before SIGKILL.

  Returns:
    The trials that completed, were skipped as already completed, or failed.

  Raises:
    KeyboardInterrupt: on SIGINT or SIGTERM, after stopping the running trials.
  """
  free = device_groups(devices, devices_per_trial, parallel)
  write_manifest(root, trials)
  summary = Summary()
  pending = []
  for trial in trials:
    if runs.is_finished(trial.workdir(root)):
      summary.skipped.append(trial.name)
    else:
      pending.append(trial)
  total, running = len(pending), []
  report(f"{len(trials)} trials, {len(summary.skipped)} already finished, {total} to run")
  with _sigterm_interrupts():
    try:
      while pending or running:
        while pending and free:
          run = _start(pending.pop(0), root, free.pop(0), command)
          running.append(run)
          pinned = f" on CUDA_VISIBLE_DEVICES={','.join(run.devices)}" if run.devices else ""
          report(f"started {run.trial.name}{pinned}")
        time.sleep(poll_seconds)
        for run in [r for r in running if r.process.poll() is not None]:
          running.remove(run)
          free.append(run.devices)
          seconds = time.monotonic() - run.started
          status = _finish(run, root)
          if status == runs.COMPLETED:
            summary.completed.append(run.trial.name)
            report(f"completed {run.trial.name} in {seconds:.0f}s")
          elif status == runs.DIVERGED:
            summary.diverged.append(run.trial.name)
            report(f"DIVERGED {run.trial.name} after {seconds:.0f}s; see its {runs.RESULT}")
          else:
            summary.failed.append(run.trial.name)
            report(
              f"FAILED {run.trial.name} (exit {run.process.returncode}); see "
              f"{os.path.join(run.trial.workdir(root), runs.FAILED)}"
            )
    except KeyboardInterrupt:
      report(f"interrupted: stopping {len(running)} running trials")
      _stop(running, grace_seconds)
      raise
  report(str(summary))
  return summary
