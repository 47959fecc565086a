"""`train_and_evaluate`: the training loop, periodic evaluation and the run's result.

The run is resumable: the workdir's latest checkpoint holds the train state and the data
iterator's position, so killing a run and starting it again with the same command ends
with the same numbers as an uninterrupted run.
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

from attn_research import runs
from attn_research.training import distributed, optimizers, parallel, setup
from attn_research.training.checkpointing import Checkpointer
from attn_research.training.clock import Clock
from attn_research.training.evaluator import Evaluator
from attn_research.training.losses import ATTENTION_TERMS
from attn_research.training.prefetch import Prefetch
from attn_research.training.reports import run_label, write_reports
from attn_research.training.summaries import Summaries

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


def _count_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _finish(run: runs.Workdir, result: dict) -> dict:
  """Writes result.json; a diverged run also says so in one line."""
  run.write_json(runs.RESULT, result)
  if result["status"] == runs.DIVERGED:
    _note(f"Diverged: {result['error']}")
  else:
    _note(f"Finished in {result['wall_seconds']:.1f} s.")
  return result


def _final_evaluation(
  config: ml_collections.ConfigDict, evaluator: Evaluator, params, run: runs.Workdir, data
) -> dict[str, dict]:
  """Every split of `eval.splits`, with its reports (hypotheses, plots) written."""
  final = {}
  num_heatmaps = config.eval.num_heatmaps if evaluator.attentional else 0
  for split in config.eval.splits:
    evaluation = evaluator.run(params, split, num_heatmaps)
    final[split] = evaluation.metrics
    if run.writer:
      source_texts = data.splits[split].source_texts
      write_reports(run.path, split, evaluation, source_texts, data.src_vocab, run_label(config))
  return final


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
    `error`) when the loss or a validation perplexity stopped being finite.
  """
  mesh = mesh or parallel.make_mesh()
  setup.validate(config, mesh)
  run = runs.Workdir(workdir, writer=jax.process_index() == 0)
  with distributed.writer_first("claim_workdir"):  # the others read what process 0 reset
    run.claim(config, overwrite)
  previous = run.status()
  if previous.status in runs.FINISHED:
    _note(f"{run.path} already holds a {previous.status} run; returning its result.")
    return previous.result

  prepared = setup.prepare(config, run, mesh, _note)
  model, data, state, progress = prepared.model, prepared.data, prepared.state, prepared.progress
  start_step, checkpointer = prepared.start_step, prepared.checkpointer
  run.truncate_metrics(start_step)  # what a killed run logged after its last checkpoint
  summaries = Summaries(
    run.file(runs.TENSORBOARD), config.eval.splits, start_step, enabled=run.writer
  )

  def write_metrics(record: dict) -> None:
    run.append_metrics(record)
    summaries.write(record)

  with contextlib.closing(summaries):
    clock = Clock(progress)
    train_tokens = progress.get("train_tokens", 0.0)
    best_ppl = progress.get("best_validation_ppl")
    best = Checkpointer(run.file(runs.BEST), keep=1)
    batches = setup.train_batches(config, data, progress, mesh)
    p_train_step = setup.jit_train_step(config, model, mesh)
    dropout_rng = jax.random.split(jax.random.key(config.seed))[1]
    evaluator = Evaluator(model, mesh, data, config.eval, config.decode, config.train.dtype)
    schedule = optimizers.SCHEDULES.get(config.train.schedule)(config.train)
    num_steps = config.train.num_steps
    base = {"config": runs.stored(config), "num_params": _count_params(state.params)}

    def diverged(step: int, what: str, **extra) -> dict:
      error = f"{what} at step {step}; {DIVERGED_HINT}."
      return {
        "status": runs.DIVERGED,
        "step": step,
        "error": error,
        **base,
        **clock.as_dict(),
      } | extra

    def keep_if_best(step: int, validation: dict) -> None:
      nonlocal best_ppl
      if best_ppl is None or validation["ppl"] < best_ppl:
        best_ppl = validation["ppl"]
        best.save(step, state, {"validation_ppl": best_ppl})

    bar = tqdm.tqdm(
      total=num_steps, initial=start_step, desc="train", unit="step", disable=not run.writer
    )
    depth = steps_in_flight()
    prefetched = Prefetch(batches, lambda batch: parallel.shard_local_batch(batch, mesh))
    in_flight, done = collections.deque(), []
    interval_train = clock.seconds["train"]
    try:
      for step in range(start_step + 1, num_steps + 1):
        with clock.measure("train"):
          host_batches, batches = zip(
            *(next(prefetched) for _ in range(config.train.accumulate_steps)), strict=True
          )
          state, step_metrics = p_train_step(state, batches, dropout_rng)
          for host_batch in host_batches:
            clock.record_step((host_batch["src"].shape, host_batch["tgt_in"].shape))
          in_flight.append(step_metrics)
          if len(in_flight) >= depth:  # wait for the oldest step: at most `depth` queued
            done.append(jax.block_until_ready(in_flight.popleft()))
          log = step % config.train.log_every == 0 or step == num_steps
          if log:  # the one host transfer of metrics per interval
            done += in_flight
            in_flight.clear()
            summed = jax.device_get(jax.tree.map(lambda *x: sum(x), *done))
        bar.update(1)
        if log:
          seconds = clock.seconds["train"] - interval_train
          interval_tokens = float(summed["tokens"])  # of every process's rows
          record = {
            "step": step,
            "train_loss": float(summed["nll_sum"] / summed["tokens"]),
            "grad_norm": float(summed["grad_norm"]) / len(done),
            **{
              f"train_{name}_loss": float(summed[f"{name}_sum"] / summed["tokens"])
              for name in ATTENTION_TERMS
              if f"{name}_sum" in summed
            },
            "learning_rate": float(schedule(step - 1)),
            "tokens_per_second": interval_tokens / seconds if seconds else None,
          }
          write_metrics(record)
          if not math.isfinite(record["train_loss"]):
            bar.close()
            return _finish(run, diverged(step, f"the training loss is {record['train_loss']}"))
          bar.set_postfix(
            loss=f"{record['train_loss']:.4f}", tok_s=f"{record['tokens_per_second'] or 0:.0f}"
          )
          train_tokens += interval_tokens
          done, interval_train = [], clock.seconds["train"]
        if step % config.train.eval_every == 0 and step != num_steps:
          with clock.measure("eval"):
            validation = evaluator(state.params, "validation")
          write_metrics({"step": step, **{f"validation_{k}": v for k, v in validation.items()}})
          if not math.isfinite(validation["ppl"]):
            bar.close()
            return _finish(run, diverged(step, f"the validation perplexity is {validation['ppl']}"))
          keep_if_best(step, validation)
          _note(
            f"step {step}: validation ppl {validation['ppl']:.4f}, BLEU {validation['bleu']:.2f}, "
            f"exact match {validation['exact_match']:.4f}"
          )
        if step % config.train.checkpoint_every == 0 or step == num_steps:
          with clock.measure("checkpoint"):
            checkpointer.save(
              step,
              state,
              {
                "data": prefetched.get_state(),
                "train_tokens": train_tokens,
                "best_validation_ppl": best_ppl,
                **clock.as_dict(),
              },
            )
    finally:
      prefetched.close()
    bar.close()
    checkpointer.close()

    with clock.measure("eval"):
      final = _final_evaluation(config, evaluator, state.params, run, data)
    write_metrics(
      {
        "step": num_steps,
        **{f"{s}_{k}": v for s, result in final.items() for k, v in result.items()},
      }
    )
    if not math.isfinite(final["validation"]["ppl"]):
      best.close()
      what = f"the validation perplexity is {final['validation']['ppl']}"
      return _finish(run, diverged(num_steps, what, metrics=final))
    keep_if_best(num_steps, final["validation"])
    best.close()
    seconds = clock.seconds["train"]
    return _finish(
      run,
      {
        "status": runs.COMPLETED,
        **base,
        **clock.as_dict(),
        "train_tokens_per_second": train_tokens / seconds if seconds else None,
        "metrics": final,
      },
    )
