"""Orbax checkpoints of the train state together with the run's JSON-able progress."""

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax.training import train_state

from attn_research.errors import ConfigError


def _state_handler() -> ocp.PyTreeCheckpointHandler:
  """Orbax's pytree handler with one writer per replicated array. Orbax's default on CPU
  splits each replicated array among its devices to write the pieces in parallel, which
  compiles a slice per array shape and device (80 compilations for the tiny test model
  on 8 devices, seconds per process) to write a few megabytes."""
  t = ocp.type_handlers
  registry = t.create_type_handler_registry(
    *((kind, t.ScalarHandler()) for kind in (int, float, bytes, np.number)),
    (np.ndarray, t.NumpyHandler()),
    (jax.Array, t.ArrayHandler(use_replica_parallel=False)),
    (str, t.StringHandler()),
  )
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


class Checkpointer:
  """Keeps the last `keep` checkpoints; each holds the train state and a JSON dict
  (data iterator position, elapsed time, processed tokens) so a resumed run continues
  exactly where the checkpoint was taken.
  """

  def __init__(self, directory: str, keep: int):
    self.directory = directory
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self._manager = ocp.CheckpointManager(
      directory,
      options=options,
      item_handlers={"state": _state_handler(), "progress": ocp.JsonCheckpointHandler()},
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: train_state.TrainState, progress: dict) -> None:
    # A checkpoint at `step` from a run that died before it could resume past it (or one
    # that did not restore) is replaced.
    if step in self._manager.all_steps():
      self._manager.delete(step)
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.PyTreeSave(state), progress=ocp.args.JsonSave(progress)
      ),
    )

  def restore(self, step: int, abstract_state) -> tuple[train_state.TrainState, dict]:
    """`abstract_state`: `jax.ShapeDtypeStruct` tree with the target shardings."""
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(
          abstract_state,
          restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state),
        ),
        progress=ocp.args.JsonRestore(),
      ),
    )
    return restored.state, restored.progress

  def restore_newest(
    self, abstract_state, note, fix: str = "pass --overwrite to start the run again"
  ) -> tuple[int, train_state.TrainState, dict] | None:
    """The newest checkpoint that restores, as `(step, state, progress)`; None if there is
    none. Damaged newer ones are named through `note(line)` and deleted.

    Raises:
      ConfigError: there are checkpoints and none of them restores (the message ends
        with `fix`).
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        state, progress = self.restore(step, abstract_state)
      # Orbax reports a damaged checkpoint with whatever its readers raise (JSON, msgpack,
      # tensorstore, missing files), so any error means "try the next one".
      except Exception as e:
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
        later = steps[i + 1] if i + 1 < len(steps) else None
        then = f"trying step {later}" if later is not None else "no earlier checkpoint"
        note(f"Checkpoint {step} in {self.directory} does not restore ({reason}); {then}.")
        continue
      for damaged in steps[:i]:
        self._manager.delete(damaged)
      return step, state, progress
    if steps:
      raise ConfigError(
        f"No checkpoint in {self.directory} restores (steps {', '.join(map(str, steps))}); {fix}."
      )
    return None

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
