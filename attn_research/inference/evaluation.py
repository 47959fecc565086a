"""Evaluating a finished (or running) run from its directory."""

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import ml_collections

from attn_research import runs
from attn_research.config import fields
from attn_research.config import overrides as config_overrides
from attn_research.data.pipeline import Buckets
from attn_research.data.vocab import Vocabulary
from attn_research.decoding.ensemble import Ensemble
from attn_research.errors import ConfigError
from attn_research.model import Seq2Seq
from attn_research.training import experiment, parallel, setup
from attn_research.training.checkpointing import Checkpointer
from attn_research.training.data import prepare_data
from attn_research.training.evaluator import Evaluator
from attn_research.training.experiment import Experiment
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


@dataclasses.dataclass(frozen=True)
class RunVocabs:
  """What a run's model is shaped by, besides its config: vocabularies and buckets."""

  src_vocab: Vocabulary
  tgt_vocab: Vocabulary
  buckets: Buckets

  @classmethod
  def of_run(cls, run: runs.Workdir, config: ml_collections.ConfigDict) -> "RunVocabs":
    """The vocabularies stored in `run` and the buckets of its `config`."""
    for name in (runs.SOURCE_VOCAB, runs.TARGET_VOCAB):
      if not run.exists(name):
        raise ConfigError(f"{run.path} has no {name}; its training has not started.")
    return cls(
      Vocabulary.from_json(run.read_text(runs.SOURCE_VOCAB)),
      Vocabulary.from_json(run.read_text(runs.TARGET_VOCAB)),
      Buckets(tuple(config.data.source_buckets), tuple(config.data.target_buckets)),
    )


def evaluate_run(
  workdirs: str | Sequence[str],
  config: ml_collections.ConfigDict,
  split: str,
  checkpoint: str = "best",
  reports_dir: str = "",
) -> tuple[dict, list[str]]:
  """Restores a checkpoint of a run (or of several, decoded as an ensemble) and decodes
  `split` with `config`.

  Args:
    workdirs: the run, or the runs of an ensemble (the first one's data and config).
    config: the first run's config with overrides.
    split: the split to decode.
    checkpoint: "best" (lowest validation perplexity), "latest" or "average".
    reports_dir: where to write hypotheses, the BLEU-by-length plot and `eval.num_heatmaps`
      attention heatmaps; "" writes none.

  Returns:
    `{"split", "checkpoint", "step", "decode", "metrics": {...}}` (an ensemble's also
    `workdirs` and each one's `steps`) and the hypotheses in split order.

  Raises:
    ConfigError: no run there, no checkpoint, an unknown split, runs of different
      vocabularies, or an override that changes the trained model (only decode.*, eval.*,
      dataset.data_dir and a text run's evaluation files may change).
  """
  workdirs = [workdirs] if isinstance(workdirs, str) else list(workdirs)
  run = open_run(workdirs[0], config)
  mesh = parallel.make_mesh()
  experiment.validate(config, mesh.size)
  data = prepare_data(config, run, (split,))
  model, params, steps = restore_runs(run, config, data, workdirs[1:], checkpoint, mesh)
  typed = fields.parse(Experiment, config, num_devices=mesh.size)
  evaluator = Evaluator(model, mesh, data, typed.eval, typed.decode, config.train.dtype)
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
    "step": steps[0],
    "decode": config.decode.to_dict(),
    "metrics": evaluation.metrics,
  }
  if len(workdirs) > 1:
    result.update(workdirs=workdirs, steps=steps)
  return result, evaluation.hypotheses


def restore_runs(
  first: runs.Workdir,
  config: ml_collections.ConfigDict,
  shapes,
  others: Sequence[str],
  checkpoint: str,
  mesh,
) -> tuple[Seq2Seq | Ensemble, Any, list[int]]:
  """The model and `checkpoint` parameters of run `first` (with `config` and `shapes`,
  `Data` or `RunVocabs`), or with `others` an `Ensemble` of it and them (each with its own
  stored config, their source and target vocabularies equal to `shapes`').

  Returns:
    `(model, params, steps)`: an ensemble's params are the tuple of its members'.

  Raises:
    ConfigError: a run without vocabularies or checkpoint, or with other vocabularies.
  """
  model, step, params = restore_model(first, config, checkpoint, shapes, mesh)
  if not others:
    return model, params, [step]
  models, all_params, steps = [model], [params], [step]
  for workdir in others:
    run_config = experiment.read_stored(workdir)
    run = open_run(workdir, run_config)
    vocabs = RunVocabs.of_run(run, run_config)
    for side, name in (("src_vocab", "source"), ("tgt_vocab", "target")):
      ours, theirs = getattr(shapes, side), getattr(vocabs, side)
      if ours != theirs:
        raise ConfigError(
          f"{run.path} has another {name} vocabulary ({len(theirs)} tokens) than "
          f"{first.path} ({len(ours)}); an ensemble averages probabilities over one "
          "vocabulary."
        )
    model, step, params = restore_model(run, run_config, checkpoint, vocabs, mesh)
    models.append(model)
    all_params.append(params)
    steps.append(step)
  return Ensemble(models), tuple(all_params), steps


def open_run(workdir: str, config: ml_collections.ConfigDict) -> runs.Workdir:
  """The run in `workdir`, read-only, refusing a `config` that changes its model.

  Raises:
    ConfigError: no run there, or an override besides `OVERRIDABLE`.
  """
  stored = experiment.read_stored(workdir)
  changed = [
    d for d in config_overrides.config_differences(stored, config) if not d.startswith(OVERRIDABLE)
  ]
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
