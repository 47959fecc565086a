"""Optional experiment trackers that mirror a run's `metrics.jsonl` and config: Weights &
Biases in offline mode and MLflow with a local file store. Each is imported only when its
key is on (`pip install -e ".[wandb]"` / `".[mlflow]"`); the run directory stays the
record, the trackers a view of it.
"""

import dataclasses
import hashlib
import importlib
import os
from collections.abc import Mapping
from typing import Any

from attn_research.config.fields import Bool, Text, field
from attn_research.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
  """`tracking`: trackers that mirror every metrics record and the config."""

  wandb: bool = field(
    Bool(), False, "mirror to Weights & Biases, offline, in <workdir>/wandb (wandb sync uploads)"
  )
  wandb_project: str = field(Text(empty=False), "attn_research", "the W&B project")
  mlflow: bool = field(
    Bool(), False, "mirror to MLflow's file store, <workdir>/mlruns unless mlflow_uri is set"
  )
  mlflow_uri: str = field(Text(), "", "MLflow tracking URI (empty: file:<workdir>/mlruns)")


def _import(name: str, extra: str):
  try:
    return importlib.import_module(name)
  except ImportError:
    raise ConfigError(
      f"tracking.{extra}=True needs {name}; pip install -e '.[{extra}]', or set "
      f"tracking.{extra}=False."
    ) from None


class Trackers:
  """The trackers `tracking` switches on, for the run in `workdir` whose config is
  `config` (`overrides.hyperparameters`); a resumed run continues the same W&B run (its
  id comes from the workdir)."""

  def __init__(self, tracking: TrackingConfig, workdir: str, config: Mapping[str, Any]):
    self._wandb = self._mlflow = None
    name = os.path.basename(os.path.abspath(workdir))
    values = dict(config)
    if tracking.wandb:
      wandb = _import("wandb", "wandb")
      run_id = hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:16]
      self._wandb = wandb.init(
        project=tracking.wandb_project,
        name=name,
        id=run_id,
        resume="allow",
        dir=workdir,
        mode="offline",
        config=values,
      )
    if tracking.mlflow:
      mlflow = _import("mlflow", "mlflow")
      uri = tracking.mlflow_uri or "file:" + os.path.join(os.path.abspath(workdir), "mlruns")
      if uri.startswith("file:"):  # MLflow ≥ 3.6 refuses its file store unless asked
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
      mlflow.set_tracking_uri(uri)
      self._mlflow = mlflow
      mlflow.start_run(run_name=name)
      for start in range(0, len(values), 100):  # MLflow takes at most 100 params a call
        mlflow.log_params(dict(list(values.items())[start : start + 100]))

  def write(self, record: Mapping[str, Any]) -> None:
    """Mirrors one `metrics.jsonl` record (its numbers, at its step)."""
    numbers = {
      k: float(v)
      for k, v in record.items()
      if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }
    if self._wandb is not None:
      self._wandb.log(numbers, step=record["step"])
    if self._mlflow is not None:
      self._mlflow.log_metrics(numbers, step=record["step"])

  def close(self) -> None:
    if self._wandb is not None:
      self._wandb.finish()
    if self._mlflow is not None:
      self._mlflow.end_run()
