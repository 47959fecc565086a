"""Evaluating a finished (or running) run from its directory."""

import sys
from typing import Any

import ml_collections

from attn_research import runs
from attn_research.data import datasets
from attn_research.errors import ConfigError
from attn_research.model import Seq2Seq
from attn_research.training import parallel, setup
from attn_research.training.checkpointing import Checkpointer
from attn_research.training.data import prepare_data
from attn_research.training.evaluator import Evaluator
from attn_research.training.reports import run_label, write_reports

# A text run may be evaluated on other validation and test files.
OVERRIDABLE = (
  "decode.",
  "eval.",
  "dataset.data_dir",
  "dataset.cache_dir",
  "dataset.files.validation",
  "dataset.files.test",
)
CHECKPOINT_KINDS = {"best": runs.BEST, "latest": runs.CHECKPOINTS, "average": runs.AVERAGED}


def evaluate_run(
  workdir: str,
  config: ml_collections.ConfigDict,
  split: str,
  checkpoint: str = "best",
  reports_dir: str = "",
) -> tuple[dict, list[str]]:
  """Restores a checkpoint of `workdir` and decodes `split` with `config`.

  Args:
    workdir: the run.
    config: its config, with decoding overrides.
    split: the split to decode.
    checkpoint: "best" (lowest validation perplexity) or "latest".
    reports_dir: where to write hypotheses, the BLEU-by-length plot and `eval.num_heatmaps`
      attention heatmaps; "" writes none.

  Returns:
    `{"split", "checkpoint", "step", "decode", "metrics": {...}}` and the hypotheses in
    split order.

  Raises:
    ConfigError: no run there, no checkpoint, an unknown split, or an override that
      changes the trained model (only decode.*, eval.*, dataset.data_dir and a text run's
      evaluation files may change).
  """
  run = open_run(workdir, config)
  mesh = parallel.make_mesh()
  setup.validate(config, mesh)
  dataset = config.dataset
  available = datasets.split_names(dataset.name, dataset.data_dir, dataset.files)
  if split not in available:
    raise ConfigError(f"Unknown split {split!r}; the dataset has {', '.join(available)}.")
  data = prepare_data(config, run, (split,))
  model, step, params = restore_model(run, config, checkpoint, data, mesh)
  evaluator = Evaluator(model, mesh, data, config.eval, config.decode, config.train.dtype)
  num_heatmaps = config.eval.num_heatmaps if evaluator.attentional else 0
  evaluation = evaluator.run(params, split, num_heatmaps)
  if reports_dir:
    write_reports(
      reports_dir,
      split,
      evaluation,
      data.splits[split].source_texts,
      data.src_vocab,
      run_label(config),
    )
  result = {
    "split": split,
    "checkpoint": checkpoint,
    "step": step,
    "decode": config.decode.to_dict(),
    "metrics": evaluation.metrics,
  }
  return result, evaluation.hypotheses


def open_run(workdir: str, config: ml_collections.ConfigDict) -> runs.Workdir:
  """The run in `workdir`, read-only, refusing a `config` that changes its model.

  Raises:
    ConfigError: no run there, or an override besides `OVERRIDABLE`.
  """
  stored = runs.read_run_config(workdir)
  changed = [d for d in runs.config_differences(stored, config) if not d.startswith(OVERRIDABLE)]
  if changed:
    raise ConfigError(
      f"These overrides change the trained model, not its decoding: {'; '.join(changed)}. "
      "Only decode.*, eval.*, dataset.data_dir and dataset.files.{validation,test} can be "
      "overridden."
    )
  return runs.Workdir(workdir, writer=False)


def restore_model(
  run: runs.Workdir, config: ml_collections.ConfigDict, checkpoint: str, shapes, mesh
) -> tuple[Seq2Seq, int, Any]:
  """The run's model and the parameters of its `checkpoint` ("best" or "latest"), with
  `shapes` (`Data` or `RunVocabs`) giving the vocabularies and buckets.

  Returns:
    `(model, step, params)`, the parameters replicated over `mesh`.
  """
  if checkpoint not in CHECKPOINT_KINDS:
    raise ConfigError(f"--checkpoint={checkpoint!r}; valid: {', '.join(CHECKPOINT_KINDS)}.")
  checkpointer = Checkpointer(run.file(CHECKPOINT_KINDS[checkpoint]), keep=1)
  try:
    if checkpointer.latest_step() is None:
      raise ConfigError(f"{run.path} has no {checkpoint} checkpoint yet; train it further.")
    model, state = setup.build(config, shapes, mesh)
    fix = "use another --checkpoint, or retrain the run with --overwrite"
    step, state, _ = setup.restore_newest(checkpointer, state, _note, fix=fix)
  finally:
    checkpointer.close()
  return model, step, state.params


def _note(message: str) -> None:
  print(message, file=sys.stderr)
