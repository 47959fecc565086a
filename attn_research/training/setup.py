"""What a run needs before its first step: a checked config, data, model, restored state."""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from absl import logging
from flax.training import train_state
from jax.sharding import Mesh

from attn_research import runs
from attn_research.config import fields
from attn_research.data.pipeline import TrainBatches
from attn_research.model import ModelConfig, Seq2Seq
from attn_research.training import losses, optimizers, parallel, steps
from attn_research.training.checkpointing import Checkpointer
from attn_research.training.data import Data, prepare_data, with_train_alignments
from attn_research.training.evaluator import Evaluator
from attn_research.training.experiment import Experiment
from attn_research.training.prefetch import Prefetch
from attn_research.training.sampling import ScheduledSampling


def build(
  config: ml_collections.ConfigDict,
  data: Data,
  mesh: Mesh,
  plan: optimizers.StepPlan | None = None,
) -> tuple[Seq2Seq, train_state.TrainState]:
  """The model and its freshly initialised, replicated train state. `plan` sets the
  learning-rate schedule's length; without it the state is one to restore a checkpoint
  into (its structure does not depend on the plan)."""
  plan = plan or optimizers.StepPlan(config.train.num_steps, steps_per_epoch=1.0)
  model = Seq2Seq(
    ModelConfig.from_config(
      config.model, len(data.src_vocab), len(data.tgt_vocab), data.buckets.source[-1]
    )
  )
  tx = optimizers.make_optimizer(config.train, plan)

  def init_state(rng):
    src = jnp.zeros((1, data.buckets.source[0]), jnp.int32)
    tgt = jnp.zeros((1, data.buckets.target[0]), jnp.int32)
    params = model.init(rng, src, src > 0, tgt)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

  init_rng = jax.random.split(jax.random.key(config.seed))[0]
  return model, jax.jit(init_state, out_shardings=parallel.replicated(mesh))(init_rng)


def abstract_state(like: train_state.TrainState):
  """`like`'s structure, shapes, dtypes and shardings: what a checkpoint restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), like)


def restore_newest(
  checkpointer: Checkpointer, like: train_state.TrainState, note: Callable[[str], None], **kw
) -> tuple[int, train_state.TrainState, dict] | None:
  """The newest checkpoint that restores, in the structure and sharding of `like`."""
  return checkpointer.restore_newest(abstract_state(like), note, **kw)


@dataclasses.dataclass
class Prepared:
  """What the training loop needs: a run ready to train from `start_step` (0: fresh).

  Attributes:
    batches: this process's training batches, placed on the devices ahead of the loop,
      positioned where the restored run left them.
    train_step: `(state, batches, rng) → (state, metrics)` (`jit_train_step`).
    dropout_rng: the key each step folds its step number into.
    progress: what the newest checkpoint saved beside the state ({} when fresh).
    plan: how many steps the run trains, and its steps per epoch.
  """

  data: Data
  model: Seq2Seq
  state: train_state.TrainState
  start_step: int
  progress: dict
  checkpointer: Checkpointer
  best: Checkpointer
  batches: Prefetch
  train_step: Callable
  dropout_rng: jax.Array
  evaluator: Evaluator
  schedule: optax.Schedule
  plan: optimizers.StepPlan
  _ended: bool = False

  def end_training(self) -> None:
    """Stops the batch producer and writes the last checkpoints out."""
    if not self._ended:
      self.batches.close()
      self.checkpointer.close()
      self._ended = True

  def close(self) -> None:
    self.end_training()
    self.best.close()


def prepare(
  config: ml_collections.ConfigDict, run: runs.Workdir, mesh: Mesh, note: Callable[[str], None]
) -> Prepared:
  """Data, model and the state of the newest checkpoint that restores (else a fresh one),
  with the batches, compiled step and evaluator that train it."""
  typed = fields.parse(Experiment, config, num_devices=mesh.size)
  data = prepare_data(config, run, note=note)
  if config.train.guided_alignment:
    data = with_train_alignments(data, config.dataset)
  batches = train_batches(config, data, mesh)
  plan = optimizers.StepPlan.of(config.train, batches.batches_per_epoch)
  model, state = build(config, data, mesh, plan)
  checkpointer = Checkpointer(run.file(runs.CHECKPOINTS), config.train.keep_checkpoints)
  start_step, progress = 0, {}
  restored = restore_newest(checkpointer, state, note)
  if restored is not None:
    start_step, state, progress = restored
    note(f"Resumed from the checkpoint at step {start_step} in {run.path}.")
  if "data" in progress:
    batches.set_state(progress["data"])
  return Prepared(
    data=data,
    model=model,
    state=state,
    start_step=start_step,
    progress=progress,
    checkpointer=checkpointer,
    best=Checkpointer(run.file(runs.BEST), keep=1),
    batches=Prefetch(batches, lambda batch: parallel.shard_local_batch(batch, mesh)),
    train_step=jit_train_step(config, model, mesh),
    dropout_rng=jax.random.split(jax.random.key(config.seed))[1],
    evaluator=Evaluator(model, mesh, data, typed.eval, typed.decode, config.train.dtype),
    schedule=optimizers.SCHEDULES.get(config.train.schedule)(config.train, plan),
    plan=plan,
  )


def train_batches(
  config: ml_collections.ConfigDict, data: Data, mesh: Mesh | None = None
) -> TrainBatches:
  """This process's rows of the training batches (every row without `mesh`), from the
  start of the first epoch."""
  batches = TrainBatches(
    data.splits["train"],
    data.buckets,
    config.train.batch_size,
    seed=config.seed,
    max_words=config.data.max_train_words,
    batch_tokens=config.train.batch_tokens,
    multiple=mesh.size if mesh else 1,
    shard=parallel.process_devices(mesh) if mesh else None,
  )
  dropped = {reason: n for reason, n in batches.dropped.items() if n}
  if dropped:
    logging.warning(
      "Dropped %d training pairs: %s.",
      sum(dropped.values()),
      ", ".join(f"{n:,} {reason}" for reason, n in dropped.items()),
    )
  return batches


def jit_train_step(config: ml_collections.ConfigDict, model: Seq2Seq, mesh: Mesh):
  """`(state, batches, rng) → (state, metrics)`: one optimizer step over the
  `train.accumulate_steps` batches (each split over the mesh, the rest replicated; the
  old state's buffers donated). One batch is one compiled step; several add their
  gradients one compiled micro-step at a time, so only one batch's activations are alive."""
  repl, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  objective = losses.Objective(
    label_smoothing=config.train.label_smoothing,
    coverage=config.train.coverage_loss,
    coverage_start=config.train.coverage_loss_start,
    guided_alignment=config.train.guided_alignment,
    guided_alignment_loss=config.train.guided_alignment_loss,
    sampling=ScheduledSampling(
      config.train.scheduled_sampling,
      config.train.sampling_k,
      config.train.sampling_c,
      config.train.sampling_min,
    ),
  )
  options = {"model": model, "objective": objective, "dtype": config.train.dtype}
  if config.train.accumulate_steps == 1:
    one = jax.jit(
      functools.partial(steps.train_step, **options),
      in_shardings=(repl, data, repl),
      out_shardings=(repl, repl),
      donate_argnums=0,
    )
    return lambda state, batches, rng: one(state, batches[0], rng)
  zero = jax.jit(functools.partial(steps.zero_accumulator, objective=objective), out_shardings=repl)
  add = jax.jit(
    functools.partial(steps.accumulate_gradients, **options),
    in_shardings=(repl, repl, data, repl, repl),
    out_shardings=repl,
    donate_argnums=0,
  )
  apply = jax.jit(steps.apply_accumulated, out_shardings=(repl, repl), donate_argnums=0)

  def step(state, batches, rng):
    accumulated = zero(state.params)
    for index, batch in enumerate(batches):
      accumulated = add(accumulated, state, batch, rng, index)
    return apply(state, accumulated)

  return step
