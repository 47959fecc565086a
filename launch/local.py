"""Runs a sweep's trials on this machine, one subprocess each, `parallel` at a time.

Every trial runs in ROOT/<name> and logs to its train.log. Finished trials (completed or
diverged) are skipped, so rerunning a sweep resumes it: killed trials restart from their
checkpoints. A failed trial leaves ROOT/<name>/failed.json and the others go on. A trial
that another live process trains (a second launcher on the same root) waits for it: it
is then skipped if that process finished it, else run here. SIGINT or SIGTERM stops the
launcher and passes SIGTERM to each trial, which checkpoints its current step and exits
(preempted: the next launch resumes it).
With GPUs, each trial sees only its own `devices_per_trial` of them through
CUDA_VISIBLE_DEVICES; the caller lists the devices, so nothing here initialises jax.
Without GPUs, concurrent trials are pinned to disjoint sets of CPU cores: a small model's
recurrent loop keeps about one core busy, so two trials pinned to one core each train
~1.8× the steps per second of one trial on both (measured on 2 cores, tiny Luong model).
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

from attn_research import run_lock, runs
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
  preempted: list[str] = dataclasses.field(default_factory=list)
  elsewhere: list[str] = dataclasses.field(default_factory=list)  # finished by another process

  def __str__(self) -> str:
    line = f"{len(self.completed)} completed, {len(self.skipped)} skipped (already finished)"
    line += f", {len(self.elsewhere)} finished by another process" if self.elsewhere else ""
    line += f", {len(self.diverged)} diverged" if self.diverged else ""
    line += f", {len(self.preempted)} preempted" if self.preempted else ""
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


def usable_cpus() -> list[int]:
  """The CPU cores this process may run on."""
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class Slot:
  """Where one of the concurrent trials runs: its GPUs (through CUDA_VISIBLE_DEVICES) and
  CPU cores (its affinity); empty means not pinned."""

  gpus: tuple[str, ...] = ()
  cpus: tuple[int, ...] = ()

  def wrap(self, argv: list[str]) -> list[str]:
    """`argv` run on this slot's CPU cores: through `taskset`, so that the pinning shows in
    the logged command and holds for every thread from the start (XLA sizes its pool by it)."""
    return ["taskset", "-c", ",".join(map(str, self.cpus)), *argv] if self.cpus else argv

  def prefix(self) -> str:
    """What runs a command in this slot, as a shell prefix."""
    gpus = f"CUDA_VISIBLE_DEVICES={','.join(self.gpus)} " if self.gpus else ""
    return gpus + (shlex.join(self.wrap([])) + " " if self.cpus else "")


def auto_parallel(
  devices: Sequence[str], devices_per_trial: int, cpus: Sequence[int] | None = None
) -> int:
  """Trials at a time that fill the machine: one per `devices_per_trial` GPUs, or without
  GPUs one per CPU core."""
  if devices:
    return max(1, len(devices) // max(1, devices_per_trial))
  return len(usable_cpus() if cpus is None else cpus)


def slots(
  devices: Sequence[str],
  devices_per_trial: int,
  parallel: int,
  cpus: Sequence[int] | None = None,
) -> list[Slot]:
  """Disjoint slots, one per concurrent trial: `devices_per_trial` GPUs each, or without
  GPUs an even share of the CPU cores (unpinned when one trial runs or cores are fewer
  than trials)."""
  if parallel < 1 or devices_per_trial < 1:
    raise ConfigError("--parallel and --devices_per_trial must be at least 1.")
  if devices:
    if parallel * devices_per_trial > len(devices):
      raise ConfigError(
        f"{parallel} trials at a time × {devices_per_trial} devices each need "
        f"{parallel * devices_per_trial} devices, but {len(devices)} are visible "
        f"({','.join(devices)}); lower --parallel or --devices_per_trial."
      )
    n = devices_per_trial
    return [Slot(gpus=tuple(devices[i * n : (i + 1) * n])) for i in range(parallel)]
  cpus = usable_cpus() if cpus is None else list(cpus)
  if parallel == 1 or parallel > len(cpus) or not shutil.which("taskset"):
    return [Slot()] * parallel
  n = len(cpus)
  return [
    Slot(cpus=tuple(cpus[i * n // parallel : (i + 1) * n // parallel])) for i in range(parallel)
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
  slot: Slot
  command: list[str]
  log_offset: int  # where this attempt's output starts in train.log
  started: float


def _start(trial: Trial, root: str, slot: Slot, command: Command) -> _Running:
  workdir = trial.workdir(root)
  os.makedirs(workdir, exist_ok=True)
  argv = slot.wrap(command(trial, workdir))
  env = dict(os.environ)
  if slot.gpus:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(slot.gpus)
  with open(os.path.join(workdir, runs.LOG), "ab") as log:
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
    log.flush()
    # A session of its own: a terminal's Ctrl-C reaches only the launcher, which then
    # stops each trial's whole process group.
    process = subprocess.Popen(
      argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    return _Running(trial, process, slot, argv, log.tell(), time.monotonic())


def _output_tail(workdir: str, offset: int) -> str:
  with open(os.path.join(workdir, runs.LOG), "rb") as f:
    f.seek(offset)
    lines = f.read().decode("utf-8", errors="replace").splitlines()  # splits tqdm's \r too
  return "\n".join(lines[-ERROR_LINES:])


HELD = "held"  # an exited trial's outcome: another process trains it


def _finish(run: _Running, root: str) -> str:
  """Records the outcome of an exited trial: completed, diverged, preempted, held (by
  another process) or failed."""
  workdir = run.trial.workdir(root)
  status = runs.read_run(workdir).status
  if status in runs.FINISHED:
    runs.clear_failure(workdir)
    return status
  if run.process.returncode == runs.EXIT_PREEMPTED:
    return runs.PREEMPTED
  if run.process.returncode == runs.EXIT_HELD:
    return HELD
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
  parallel: int = 0,
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
    parallel: trials running at once; 0: `auto_parallel`, at most the unfinished trials.
    devices: GPU ids to share out (e.g. `visible_gpus()`); empty: CPU cores are shared out.
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
  if parallel < 0:
    raise ConfigError(f"--parallel={parallel}; use 0 (one trial per GPU or CPU core) or more.")
  write_manifest(root, trials)
  summary = Summary()
  pending = []
  for trial in trials:
    if runs.is_finished(trial.workdir(root)):
      summary.skipped.append(trial.name)
    else:
      pending.append(trial)
  parallel = parallel or auto_parallel(devices, devices_per_trial)
  parallel = max(1, min(parallel, len(pending)))  # all cores to a lone last trial
  free = slots(devices, devices_per_trial, parallel)
  total, running, held = len(pending), [], []
  report(f"{len(trials)} trials, {len(summary.skipped)} already finished, {total} to run")

  def wait_for(trial: Trial, holder: object) -> None:
    held.append(trial)
    report(f"{trial.name} is held by {holder}; waiting for it")

  def released() -> None:
    """Takes back the held trials whose holder is gone: finished, or to run here."""
    for trial in [t for t in held if run_lock.holder(t.workdir(root)) is None]:
      held.remove(trial)
      if runs.is_finished(trial.workdir(root)):
        summary.elsewhere.append(trial.name)
        report(f"{trial.name} was finished by another process")
      else:
        pending.append(trial)

  with _sigterm_interrupts():
    try:
      while pending or running or held:
        while pending and free:
          trial = pending.pop(0)
          if (holder := run_lock.holder(trial.workdir(root))) is not None:
            wait_for(trial, holder)
            continue
          run = _start(trial, root, free.pop(0), command)
          running.append(run)
          pinned = f" ({run.slot.prefix().strip()})" if run.slot.prefix() else ""
          report(f"started {run.trial.name}{pinned}")
        time.sleep(poll_seconds)
        for run in [r for r in running if r.process.poll() is not None]:
          running.remove(run)
          free.append(run.slot)
          seconds = time.monotonic() - run.started
          status = _finish(run, root)
          name = run.trial.name
          if status == runs.COMPLETED:
            summary.completed.append(name)
            report(f"completed {name} in {seconds:.0f}s")
          elif status == runs.DIVERGED:
            summary.diverged.append(name)
            report(f"DIVERGED {name} after {seconds:.0f}s; see its {runs.RESULT}")
          elif status == runs.PREEMPTED:
            summary.preempted.append(name)
            report(f"PREEMPTED {name} after {seconds:.0f}s (checkpointed); rerun to resume")
          elif status == HELD:
            wait_for(run.trial, run_lock.holder(run.trial.workdir(root)) or "another process")
          else:
            summary.failed.append(name)
            report(
              f"FAILED {name} (exit {run.process.returncode}); see "
              f"{os.path.join(run.trial.workdir(root), runs.FAILED)}"
            )
        released()
    except KeyboardInterrupt:
      report(f"interrupted: stopping {len(running)} running trials")
      _stop(running, grace_seconds)
      raise
  report(str(summary))
  return summary
