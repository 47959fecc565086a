"""Orbax checkpoints of the train state together with the run's JSON-able progress."""

import orbax.checkpoint as ocp
from flax.training import train_state


class Checkpointer:
  """Keeps the last `keep` checkpoints; each holds the train state and a JSON dict
  (data iterator position, elapsed time, processed tokens) so a resumed run continues
  exactly where the checkpoint was taken.
  """

  def __init__(self, directory: str, keep: int):
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self._manager = ocp.CheckpointManager(directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: train_state.TrainState, progress: dict) -> None:
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)
      ),
    )

  def restore(self, step: int, abstract_state) -> tuple[train_state.TrainState, dict]:
    """`abstract_state`: `jax.ShapeDtypeStruct` tree with the target shardings."""
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()
      ),
    )
    return restored.state, restored.progress

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
