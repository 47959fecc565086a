"""`train_and_evaluate`: the training loop, periodic evaluation and the run's result.

The run is resumable: the workdir's latest checkpoint holds the train state and the data
iterator's position, so killing a run and starting it again with the same command ends
with the same numbers as an uninterrupted run. One process at a time trains a workdir
(`run_lock`); SIGTERM or SIGUSR1 stops it after its current step with a checkpoint there
(`preemption`).
"""

import collections
import contextlib
import math
import sys

import jax
import ml_collections
import numpy as np
import tqdm
from jax.sharding import Mesh

from attn_research import provenance, run_lock, runs
from attn_research.config import fields
from attn_research.config import overrides as config_overrides
from attn_research.training import distributed, experiment, optimizers, parallel, setup
from attn_research.training.clock import Clock
from attn_research.training.losses import ATTENTION_TERMS
from attn_research.training.preemption import Preemption
from attn_research.training.reports import run_label, write_reports
from attn_research.training.summaries import Summaries
from attn_research.training.trackers import Trackers, TrackingConfig
from attn_research.training.watch import Watch

DIVERGED_HINT = "lower train.learning_rate, or set train.grad_clip"


def _note(message: str) -> None:
  """A status line that does not break the progress bar (process 0 only)."""
  if jax.process_index() == 0:
    tqdm.tqdm.write(message, file=sys.stderr)


def steps_in_flight() -> int:
  """How many train steps may be queued on the devices before the loop waits.

  Several on real hardware, so the host prepares and dispatches the next step while the
  devices run; one on simulated CPU devices, where queued steps can fill XLA:CPU's thread
  pool and starve a collective.
  """
  return 1 if jax.default_backend() == "cpu" and jax.local_device_count() > 1 else 3


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  mesh: Mesh | None = None,
  overwrite: bool = False,
) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint) and evaluates.

  Args:
    config: experiment config (see `experiments/configs/base.py`).
    workdir: run directory; a directory holding a run with another config is refused.
    mesh: device mesh (default: all devices on one `data` axis).
    overwrite: delete a previous run in `workdir` first.

  Returns:
    the contents of `result.json`: `status` "completed", or "diverged" (with the step and
    `error`) when the loss or a validation perplexity stopped being finite; or, written
    nowhere, `{"status": "preempted", "step": S, "signal": …}` when a signal stopped the
    run after checkpointing step S.

  Raises:
    run_lock.WorkdirHeldError: another live process is training `workdir`.
  """
  mesh = mesh or parallel.make_mesh()
  experiment.validate(config, mesh.size)
  run = runs.Workdir(workdir, writer=jax.process_index() == 0)
  held = run_lock.hold(run.path, _note) if run.writer else contextlib.nullcontext()
  with held, contextlib.closing(Preemption()) as preemption:
    with distributed.writer_first("claim_workdir"):  # the others read what process 0 reset
      run.claim(config, overwrite, experiment.complete)
    if (previous := run.status()).status in runs.FINISHED:
      _note(f"{run.path} already holds a {previous.status} run; returning its result.")
      return previous.result
    return _train(config, run, mesh, preemption)


def _train(
  config: ml_collections.ConfigDict, run: runs.Workdir, mesh: Mesh, preemption: Preemption
) -> dict:
  job = setup.prepare(config, run, mesh, _note)
  log = Log(run, config, job)
  state, train, num_steps = job.state, config.train, job.plan.num_steps
  pending = Pending(steps_in_flight())
  bar = tqdm.tqdm(
    total=num_steps, initial=job.start_step, desc="train", unit="step", disable=not run.writer
  )
  with contextlib.closing(job), contextlib.closing(log), contextlib.closing(bar):
    if stop := preemption.stop(at_log_step=True):  # during setup: nothing new to save
      return log.preempted(job.start_step, stop)
    # A run that stopped early and checkpointed there resumes at its final evaluation.
    for step in range(job.start_step + 1, log.last_step(num_steps) + 1):
      last = step == num_steps
      with log.clock.measure("train"):
        batches = [next(job.batches) for _ in range(train.accumulate_steps)]
        state, metrics = job.train_step(state, [b for _, b in batches], job.dropout_rng)
        log.record_shapes(host for host, _ in batches)
        pending.add(metrics)
        at_log_step = step % train.log_every == 0 or last
        stop = preemption.stop(at_log_step)
        summed = pending.collect() if at_log_step or stop else None
      bar.update(1)
      if summed is not None:
        record = log.train(step, *summed, job.schedule(step - 1) * log.plateau_factor)
        if not math.isfinite(record["train_loss"]):
          return log.diverged(step, f"the training loss is {record['train_loss']}")
        bar.set_postfix(loss=f"{record['train_loss']:.4f}", tok_s=f"{record['tok_s']:.0f}")
      if step % train.eval_every == 0 and not last:
        with log.clock.measure("eval"):
          validation = job.evaluator(state.params, "validation")
        if not log.validation(step, validation, state):
          return log.diverged(step, f"the validation perplexity is {validation['ppl']}")
        state = log.watch(step, validation, state)
      stopping = log.stopped is not None
      if step % train.checkpoint_every == 0 or last or stop or stopping:
        with log.clock.measure("checkpoint"):
          job.checkpointer.save(step, state, log.progress(job.batches.get_state()))
      if stop:
        return log.preempted(step, stop)
      if stopping:
        break
    bar.close()
    job.end_training()
    with log.clock.measure("eval"):
      final = _final_evaluation(config, job, state.params, run)
    return log.final(log.last_step(num_steps), final, state)


class Pending:
  """The metrics of train steps dispatched since the last log, at most `depth` of them
  still queued on the devices; summed on the host once per log interval."""

  def __init__(self, depth: int):
    self.depth = depth
    self.in_flight, self.done = collections.deque(), []

  def add(self, metrics: dict) -> None:
    self.in_flight.append(metrics)
    if len(self.in_flight) >= self.depth:  # wait for the oldest step
      self.done.append(jax.block_until_ready(self.in_flight.popleft()))

  def collect(self) -> tuple[dict, int]:
    """The interval's summed metrics (the one host transfer) and its number of steps."""
    done = self.done + list(self.in_flight)
    self.in_flight.clear()
    self.done = []
    return jax.device_get(jax.tree.map(lambda *x: sum(x), *done)), len(done)


class Log:
  """What a run writes as it trains: metrics.jsonl and TensorBoard, the clock and token
  count its checkpoints carry, the best checkpoint, and result.json."""

  def __init__(self, run: runs.Workdir, config: ml_collections.ConfigDict, job: setup.Prepared):
    run.truncate_metrics(job.start_step)  # what a killed run logged after its last checkpoint
    self.run, self.best = run, job.best
    hyperparameters = config_overrides.hyperparameters(config)
    self.summaries = Summaries(
      run.file(runs.TENSORBOARD),
      config.eval.splits,
      job.start_step,
      enabled=run.writer,
      config=hyperparameters,
    )
    self.trackers = None
    if run.writer:
      tracking = fields.parse(TrackingConfig, config.get("tracking", {}), "tracking.")
      self.trackers = Trackers(tracking, run.path, hyperparameters)
    self.clock = Clock(job.progress)
    self.train_tokens = job.progress.get("train_tokens", 0.0)
    self.best_ppl = job.progress.get("best_validation_ppl")
    self.interval_start = self.clock.seconds["train"]
    self.plan = job.plan
    train = config.train
    self.decay_factor, self.decays = train.decay_factor, job.progress.get("decays", 0)
    self.plateau = None
    if train.schedule == "plateau":
      self.plateau = Watch(train.decay_metric, train.decay_patience, train.decay_min_delta)
      self.plateau.restore(job.progress.get("plateau"))
    stopping = train.early_stopping
    self.early = None
    if stopping.patience:
      self.early = Watch(stopping.metric, stopping.patience, stopping.min_delta)
      self.early.restore(job.progress.get("early_stopping"))
    self.stopped = job.progress.get("stopped")  # {step, reason} once early stopping acted
    num_params = int(sum(np.prod(x.shape) for x in jax.tree.leaves(job.state.params)))
    self.base = {
      "config": config_overrides.stored(config),
      "num_params": num_params,
      "provenance": provenance.collect(),
    }

  def write(self, record: dict) -> None:
    self.run.append_metrics(record)
    self.summaries.write(record)
    if self.trackers is not None:
      self.trackers.write(record)

  def record_shapes(self, host_batches) -> None:
    for batch in host_batches:
      self.clock.record_step((batch["src"].shape, batch["tgt_in"].shape))

  def train(self, step: int, summed: dict, num_steps: int, learning_rate) -> dict:
    """Writes the interval's training metrics; returns them with `tok_s` for the bar."""
    seconds = self.clock.seconds["train"] - self.interval_start
    tokens = float(summed["tokens"])  # of every process's rows
    record = {
      "step": step,
      "epoch": self.plan.epoch(step),
      "train_loss": float(summed["nll_sum"] / summed["tokens"]),
      "grad_norm": float(summed["grad_norm"]) / num_steps,
      **{
        f"train_{name}_loss": float(summed[f"{name}_sum"] / summed["tokens"])
        for name in ATTENTION_TERMS
        if f"{name}_sum" in summed
      },
      "learning_rate": float(learning_rate),
      "tokens_per_second": tokens / seconds if seconds else None,
    }
    self.write(record)
    self.train_tokens += tokens
    self.interval_start = self.clock.seconds["train"]
    return {**record, "tok_s": record["tokens_per_second"] or 0}

  def validation(self, step: int, validation: dict, state) -> bool:
    """Writes a validation and keeps the best checkpoint; False when it diverged."""
    self.write({"step": step, **{f"validation_{k}": v for k, v in validation.items()}})
    if not math.isfinite(validation["ppl"]):
      return False
    self._keep_if_best(step, validation, state)
    _note(
      f"step {step}: validation ppl {validation['ppl']:.4f}, BLEU {validation['bleu']:.2f}, "
      f"exact match {validation['exact_match']:.4f}"
    )
    return True

  def last_step(self, num_steps: int) -> int:
    """The run's last train step: where early stopping ended it, else `num_steps`."""
    return self.stopped["step"] if self.stopped else num_steps

  @property
  def plateau_factor(self) -> float:
    """What the plateau schedule's decays so far multiply the learning rate by."""
    return self.decay_factor**self.decays

  def watch(self, step: int, validation: dict, state):
    """Feeds a validation to the plateau schedule and to early stopping; returns `state`,
    with the plateau factor lowered when the metric has stalled."""
    if self.plateau is not None and self.plateau.update(step, validation):
      _note(f"step {step}: {self.plateau.describe()}; learning rate × {self.decay_factor:g}.")
      self.plateau.reset()
      self.decays += 1
      opt_state = optimizers.with_plateau_factor(state.opt_state, self.plateau_factor)
      state = state.replace(opt_state=opt_state)
    if self.early is not None and self.early.update(step, validation):
      self.stopped = {"step": step, "reason": self.early.describe()}
      _note(f"Stopping early at step {step}: {self.stopped['reason']}.")
    return state

  def _keep_if_best(self, step: int, validation: dict, state) -> None:
    if self.best_ppl is None or validation["ppl"] < self.best_ppl:
      self.best_ppl = validation["ppl"]
      self.best.save(step, state, {"validation_ppl": self.best_ppl})

  def progress(self, data_state: dict) -> dict:
    """What a checkpoint saves beside the train state."""
    return {
      "data": data_state,
      "train_tokens": self.train_tokens,
      "best_validation_ppl": self.best_ppl,
      "decays": self.decays,
      "plateau": self.plateau.state() if self.plateau else None,
      "early_stopping": self.early.state() if self.early else None,
      "stopped": self.stopped,
      **self.clock.as_dict(),
    }

  def final(self, step: int, final: dict[str, dict], state) -> dict:
    """Writes the final evaluation and the run's result."""
    self.write({"step": step, **{f"{s}_{k}": v for s, m in final.items() for k, v in m.items()}})
    if not math.isfinite(final["validation"]["ppl"]):
      what = f"the validation perplexity is {final['validation']['ppl']}"
      return self.diverged(step, what, metrics=final)
    self._keep_if_best(step, final["validation"], state)
    seconds = self.clock.seconds["train"]
    return self._finish(
      {
        "status": runs.COMPLETED,
        **self.base,
        "steps": step,
        "epochs": self.plan.epoch(step),
        **({"stopped_early": self.stopped} if self.stopped else {}),
        **self.clock.as_dict(),
        "train_tokens_per_second": self.train_tokens / seconds if seconds else None,
        "metrics": final,
      }
    )

  def diverged(self, step: int, what: str, **extra) -> dict:
    error = f"{what} at step {step}; {DIVERGED_HINT}."
    result = {"status": runs.DIVERGED, "step": step, "error": error, **self.base}
    return self._finish(result | self.clock.as_dict() | extra)

  def preempted(self, step: int, signal: str) -> dict:
    _note(f"Stopped by {signal} with a checkpoint at step {step}; rerun to resume.")
    return {"status": runs.PREEMPTED, "step": step, "signal": signal}

  def _finish(self, result: dict) -> dict:
    """Writes result.json; a diverged run also says so in one line."""
    self.run.write_json(runs.RESULT, result)
    if result["status"] == runs.DIVERGED:
      _note(f"Diverged: {result['error']}")
    else:
      _note(f"Finished in {result['wall_seconds']:.1f} s.")
    return result

  def close(self) -> None:
    self.summaries.close()
    if self.trackers is not None:
      self.trackers.close()


def _final_evaluation(
  config: ml_collections.ConfigDict, job: setup.Prepared, params, run: runs.Workdir
) -> dict[str, dict]:
  """Every split of `eval.splits`, with its reports (hypotheses, plots) written."""
  final = {}
  num_heatmaps = config.eval.num_heatmaps if job.evaluator.attentional else 0
  for split in config.eval.splits:
    evaluation = job.evaluator.run(params, split, num_heatmaps)
    final[split] = evaluation.metrics
    if run.writer:
      source_texts = job.data.splits[split].source_texts
      write_reports(
        run.path, split, evaluation, source_texts, job.data.src_vocab, run_label(config)
      )
  return final
