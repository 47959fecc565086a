"""`train_and_evaluate`: data → model → data-parallel training → evaluation → result.json.

The run is resumable: the workdir's latest checkpoint holds the train state and the data
iterator's position, so killing a run and starting it again with the same command ends
with the same numbers as an uninterrupted run.
"""

import dataclasses
import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from absl import logging
from flax.training import train_state
from jax.sharding import Mesh

from attn_research.attention import ALIGNMENTS, SCORES
from attn_research.attention.scores import INITS
from attn_research.data import datasets
from attn_research.data.pipeline import Buckets, EncodedSplit, TrainBatches, eval_batches
from attn_research.data.tokenizers import TOKENIZERS
from attn_research.data.vocab import EOS_ID, Vocabulary
from attn_research.decoding import beam_search, greedy_decode
from attn_research.decoding.unk_replace import load_dictionary, replace_unknowns
from attn_research.errors import ConfigError
from attn_research.evaluation import alignment, metrics
from attn_research.model import BRIDGES, CELLS, DECODERS, ENCODERS, ModelConfig, Seq2Seq
from attn_research.training import distributed, optimizers, parallel, steps
from attn_research.training.checkpointing import Checkpointer
from attn_research.training.reports import Evaluation, write_reports
from attn_research.training.workdir import (
  BEST,
  CHECKPOINTS,
  RESULT,
  SOURCE_VOCAB,
  TARGET_VOCAB,
  Workdir,
  atomic_write,
)


def validate_config(config: ml_collections.ConfigDict, mesh: Mesh) -> None:
  """Fails fast, before any data is built, on names and values that cannot run."""
  datasets.parse_name(config.dataset.name)
  for registry, name in (
    (TOKENIZERS, config.dataset.vocab),
    (ENCODERS, config.model.encoder.type),
    (CELLS, config.model.encoder.cell),
    (DECODERS, config.model.decoder.type),
    (BRIDGES, config.model.bridge),
    (SCORES, config.model.attention.score),
    (ALIGNMENTS, config.model.attention.alignment),
    (optimizers.OPTIMIZERS, config.train.optimizer),
    (optimizers.SCHEDULES, config.train.schedule),
  ):
    registry.get(name)
  if "validation" not in config.eval.splits:
    raise ConfigError(
      f"eval.splits={tuple(config.eval.splits)} must include 'validation' (it picks the best "
      "checkpoint)."
    )
  if config.decode.beam_size < 0:
    raise ConfigError(f"decode.beam_size={config.decode.beam_size}: use 0 (greedy) or ≥ 1.")
  for key in (
    "train.num_steps",
    "train.batch_size",
    "eval.batch_size",
    "train.log_every",
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "eval.length_bin",
    "model.encoder.num_layers",
    "model.decoder.num_layers",
    "model.encoder.hidden_size",
    "model.embedding_size",
  ):
    value = functools.reduce(getattr, key.split("."), config)
    if value < 1:
      raise ConfigError(f"{key}={value} must be at least 1.")
  if config.model.attention.init not in INITS:
    raise ConfigError(
      f"model.attention.init={config.model.attention.init!r}; valid: {', '.join(INITS)}."
    )
  if config.model.attention.window < 0 or config.model.attention.size < 0:
    raise ConfigError("model.attention.window and model.attention.size must be ≥ 0.")
  longest = config.model.attention.max_source_length
  if 0 < longest < max(config.data.source_buckets):
    raise ConfigError(
      f"model.attention.max_source_length={longest} is shorter than the largest source "
      f"bucket ({max(config.data.source_buckets)}); raise it or set 0 to use the bucket."
    )
  if config.data.max_train_words < 0:
    raise ConfigError(
      f"data.max_train_words={config.data.max_train_words} must be ≥ 0 (0 = no limit)."
    )
  if not 0.0 <= config.train.label_smoothing < 1.0:
    raise ConfigError(f"train.label_smoothing={config.train.label_smoothing} must be in [0, 1).")
  if not 0.0 <= config.model.dropout < 1.0:
    raise ConfigError(f"model.dropout={config.model.dropout} must be in [0, 1).")
  parallel.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
  parallel.check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")


@dataclasses.dataclass
class Data:
  """A dataset encoded with the run's vocabularies.

  Attributes:
    gold: split → feature → strings for the features besides source and target (such
      as `synthetic`'s gold alignments).
    target_lang: target language code, "" when the dataset does not name one.
  """

  src_vocab: Vocabulary
  tgt_vocab: Vocabulary
  splits: dict[str, EncodedSplit]
  buckets: Buckets
  gold: dict[str, dict[str, list[str]]]
  target_lang: str


def prepare_data(config: ml_collections.ConfigDict, workdir: Workdir) -> Data:
  """Builds/loads the dataset; vocabularies come from the run if it has them."""
  raw = datasets.load(config.dataset.name, config.dataset.data_dir)
  for split in ("train", *config.eval.splits):
    if split not in raw:
      raise ConfigError(
        f"Dataset {config.dataset.name!r} has no {split} split (it has {', '.join(raw)}); "
        "fix eval.splits."
      )
  languages = datasets.languages(config.dataset.name)
  vocabs = []
  for (filename, feature), lang in zip(
    ((SOURCE_VOCAB, "source"), (TARGET_VOCAB, "target")), languages, strict=True
  ):
    if workdir.exists(filename):
      with open(workdir.file(filename), encoding="utf-8") as f:
        vocabs.append(Vocabulary.from_json(f.read()))
    else:
      vocab = Vocabulary.build(
        raw["train"][feature], config.dataset.vocab, config.dataset.vocab_size, lang=lang
      )
      if workdir.writer:
        atomic_write(workdir.file(filename), vocab.to_json())
      vocabs.append(vocab)
  src_vocab, tgt_vocab = vocabs
  splits = {
    name: EncodedSplit.from_texts(s["source"], s["target"], src_vocab, tgt_vocab)
    for name, s in raw.items()
  }
  buckets = Buckets(tuple(config.data.source_buckets), tuple(config.data.target_buckets))
  gold = {
    name: {k: v for k, v in s.items() if k not in ("source", "target")} for name, s in raw.items()
  }
  return Data(src_vocab, tgt_vocab, splits, buckets, gold, languages[1])


def make_decoder(model: Seq2Seq, decode: ml_collections.ConfigDict, max_len: int):
  """`(params, src, src_mask) → (tokens, weights)`: greedy for beam_size 0, else beam."""
  if decode.beam_size == 0:
    return functools.partial(greedy_decode, model, max_len=max_len)
  search = functools.partial(
    beam_search,
    model,
    beam_size=decode.beam_size,
    max_len=max_len,
    alpha=decode.length_penalty,
    beta=decode.coverage_penalty,
    max_len_a=decode.max_length_a,
    max_len_b=decode.max_length_b,
  )
  return lambda params, src, src_mask: search(params, src, src_mask)[:2]


class Evaluator:
  """Teacher-forced loss/perplexity and forced-decoding alignments, then decoding and its
  metrics, over every example of a split."""

  def __init__(
    self,
    model: Seq2Seq,
    mesh: Mesh,
    data: Data,
    eval_config: ml_collections.ConfigDict,
    decode: ml_collections.ConfigDict,
  ):
    self.mesh = mesh
    self.data = data
    self.batch_size = eval_config.batch_size
    self.length_bin = eval_config.length_bin
    self.attentional = DECODERS.get(model.config.decoder_type).attentional
    self._batches: dict[str, list] = {}
    # Replicated outputs: every process gets every row, to compute the same metrics.
    repl = parallel.replicated(mesh)
    self._eval_step = jax.jit(functools.partial(steps.eval_step, model=model), out_shardings=repl)
    self._decode = jax.jit(make_decoder(model, decode, data.buckets.target[-1]), out_shardings=repl)
    self._unk_replace = decode.unk_replace
    self._dictionary = load_dictionary(decode.unk_dictionary) if decode.unk_dictionary else None

  def __call__(self, params, split: str) -> dict:
    return self.run(params, split).metrics

  def run(self, params, split: str, num_attention: int = 0) -> Evaluation:
    """Evaluates every example of `split`, keeping the attention of the first
    `num_attention` examples."""
    if split not in self._batches:
      self._batches[split] = eval_batches(
        self.data.splits[split], self.data.buckets, self.batch_size, split
      )
    split_data = self.data.splits[split]
    nll = tokens = 0.0
    hypotheses, forced, attention = {}, {}, {}
    for host_batch in self._batches[split]:
      batch = parallel.shard_batch(host_batch, self.mesh)
      sums, links = self._eval_step(params, batch)
      decoded, weights = jax.device_get(self._decode(params, batch["src"], batch["src_mask"]))
      links = jax.device_get(links)
      nll += float(sums["nll_sum"])
      tokens += float(sums["tokens"])
      for row, index in enumerate(host_batch["index"]):
        index = int(index)
        if index < 0:
          continue
        forced[index] = links[row, : len(split_data.targets[index])]
        hypotheses[index] = self._detokenise(split, index, decoded[row], weights[row])
        if index < num_attention:
          ids = list(decoded[row])
          length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
          target_tokens = [self.data.tgt_vocab.tokens[i] for i in ids[:length]]
          attention[index] = (target_tokens, weights[row, :length])
    hyps = [hypotheses[i] for i in range(len(split_data))]
    refs = split_data.target_texts
    result = {
      "loss": nll / tokens,
      "ppl": metrics.perplexity(nll, tokens),
      "exact_match": metrics.exact_match(hyps, refs),
      **metrics.bleu(hyps, refs, self.data.target_lang),
      "chrf": metrics.chrf(hyps, refs),
      "num_examples": len(split_data),
      "bleu_by_length": metrics.bleu_by_length(
        hyps, refs, [len(s) for s in split_data.sources], self.length_bin
      ),
    }
    gold = self.data.gold.get(split, {})
    if "alignment" in gold and self.attentional:
      predicted = [{(int(s), t) for t, s in enumerate(forced[i])} for i in range(len(hyps))]
      result["aer"] = alignment.aer(
        predicted,
        [alignment.parse_pharaoh(a) for a in gold["alignment"]],
        [alignment.parse_pharaoh(a) for a in gold.get("possible_alignment", gold["alignment"])],
      )
    return Evaluation(result, hyps, attention)

  def _detokenise(self, split: str, index: int, decoded: np.ndarray, weights: np.ndarray) -> str:
    if not self._unk_replace:
      return self.data.tgt_vocab.decode(decoded)
    source = self.data.src_vocab.split(self.data.splits[split].source_texts[index])
    return replace_unknowns(decoded, weights, source, self.data.tgt_vocab, self._dictionary)


def build(
  config: ml_collections.ConfigDict, data: Data, mesh: Mesh
) -> tuple[Seq2Seq, train_state.TrainState]:
  """The model and its freshly initialised, replicated train state."""
  model = Seq2Seq(
    ModelConfig.from_config(
      config.model, len(data.src_vocab), len(data.tgt_vocab), data.buckets.source[-1]
    )
  )
  tx = optimizers.make_optimizer(config.train)

  def init_state(rng):
    src = jnp.zeros((1, data.buckets.source[0]), jnp.int32)
    tgt = jnp.zeros((1, data.buckets.target[0]), jnp.int32)
    params = model.init(rng, src, src > 0, tgt)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

  init_rng = jax.random.split(jax.random.key(config.seed))[0]
  return model, jax.jit(init_state, out_shardings=parallel.replicated(mesh))(init_rng)


def restore(checkpointer: Checkpointer, step: int, like: train_state.TrainState):
  """The checkpoint at `step` in the structure and sharding of `like`."""
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), like
  )
  return checkpointer.restore(step, abstract)


def run_label(config: ml_collections.ConfigDict) -> str:
  """A short name of the model variant for plots: decoder, and attention if it has one."""
  model = config.model
  if not DECODERS.get(model.decoder.type).attentional:
    return model.decoder.type
  return f"{model.decoder.type} · {model.attention.alignment} · {model.attention.score}"


def _note(message: str) -> None:
  """A status line that does not break the progress bar (process 0 only)."""
  if jax.process_index() == 0:
    tqdm.tqdm.write(message, file=sys.stderr)


def _count_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  mesh: Mesh | None = None,
  overwrite: bool = False,
) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint) and evaluates.

  Args:
    config: experiment config (see `experiments/configs/dates.py`).
    workdir: run directory; a directory holding a run with another config is refused.
    mesh: device mesh (default: all devices on one `data` axis).
    overwrite: delete a previous run in `workdir` first.

  Returns:
    the contents of `result.json`.
  """
  start_wall = time.time()
  mesh = mesh or parallel.make_mesh()
  validate_config(config, mesh)
  run = Workdir(workdir)
  with distributed.writer_first("claim_workdir"):  # the others read what process 0 reset
    run.claim(config.to_dict(), overwrite)
  if run.exists(RESULT) and run.read_json(RESULT).get("status") == "completed":
    _note(f"{run.path} already holds a completed run; returning its result.")
    return run.read_json(RESULT)

  data = prepare_data(config, run)
  model, state = build(config, data, mesh)
  repl = parallel.replicated(mesh)
  dropout_rng = jax.random.split(jax.random.key(config.seed))[1]
  num_params = _count_params(state.params)

  batches = TrainBatches(
    data.splits["train"],
    data.buckets,
    config.train.batch_size,
    seed=config.seed,
    max_words=config.data.max_train_words,
  )
  if batches.num_filtered:
    logging.warning(
      "Dropped %d training examples that are empty, do not fit the buckets or are longer "
      "than data.max_train_words.",
      batches.num_filtered,
    )
  checkpointer = Checkpointer(run.file(CHECKPOINTS), config.train.keep_checkpoints)
  best = Checkpointer(run.file(BEST), keep=1)
  progress = {
    "data": batches.get_state(),
    "train_seconds": 0.0,
    "train_tokens": 0.0,
    "wall_seconds": 0.0,
    "best_validation_ppl": None,
  }

  def keep_if_best(step: int, validation: dict) -> None:
    """Saves the state as the run's best when its validation perplexity is the lowest."""
    if (
      progress["best_validation_ppl"] is None or validation["ppl"] < progress["best_validation_ppl"]
    ):
      progress["best_validation_ppl"] = validation["ppl"]
      best.save(step, state, {"validation_ppl": validation["ppl"]})

  start_step = checkpointer.latest_step() or 0
  run.truncate_metrics(start_step)  # what a killed run logged after its last checkpoint
  if start_step:
    state, progress = restore(checkpointer, start_step, state)
    batches.set_state(progress["data"])
    _note(f"Resumed from the checkpoint at step {start_step} in {run.path}.")
  segment_wall = time.time()

  p_train_step = jax.jit(
    functools.partial(steps.train_step, model=model, label_smoothing=config.train.label_smoothing),
    in_shardings=(repl, parallel.batch_sharding(mesh), repl),
    out_shardings=(repl, repl),
    donate_argnums=0,
  )
  evaluator = Evaluator(model, mesh, data, config.eval, config.decode)
  schedule = optimizers.SCHEDULES.get(config.train.schedule)(config.train)
  num_steps = config.train.num_steps

  bar = tqdm.tqdm(
    total=num_steps,
    initial=start_step,
    desc="train",
    unit="step",
    disable=not run.writer,
    dynamic_ncols=True,
  )
  pending, interval_start = [], time.time()
  for step in range(start_step + 1, num_steps + 1):
    state, step_metrics = p_train_step(
      state, parallel.shard_batch(next(batches), mesh), dropout_rng
    )
    # One step in flight: with asynchronous dispatch running ahead, XLA:CPU's simulated
    # devices can fill their thread pool with queued steps and starve a collective.
    jax.block_until_ready(step_metrics)
    pending.append(step_metrics)
    bar.update(1)
    if step % config.train.log_every == 0 or step == num_steps:
      summed = jax.device_get(jax.tree.map(lambda *x: sum(x), *pending))
      elapsed = time.time() - interval_start
      interval_tokens = float(summed["tokens"])
      interval_start = time.time()
      record = {
        "step": step,
        "train_loss": float(summed["nll_sum"] / summed["tokens"]),
        "grad_norm": float(summed["grad_norm"]) / len(pending),
        "learning_rate": float(schedule(step - 1)),
        "tokens_per_second": interval_tokens / elapsed,
      }
      run.append_metrics(record)
      bar.set_postfix(
        loss=f"{record['train_loss']:.4f}", tok_s=f"{record['tokens_per_second']:.0f}"
      )
      progress["train_seconds"] += elapsed
      progress["train_tokens"] += interval_tokens
      pending = []
      if not math.isfinite(record["train_loss"]):
        raise FloatingPointError(
          f"The training loss is {record['train_loss']} at step {step}; lower "
          "train.learning_rate or train.grad_clip."
        )
    pause = time.time()  # evaluation and checkpointing do not count as training time
    if step % config.train.eval_every == 0 and step != num_steps:
      result = evaluator(state.params, "validation")
      keep_if_best(step, result)
      run.append_metrics({"step": step, **{f"validation_{k}": v for k, v in result.items()}})
      _note(
        f"step {step}: validation ppl {result['ppl']:.4f}, BLEU {result['bleu']:.2f}, "
        f"exact match {result['exact_match']:.4f}"
      )
    if step % config.train.checkpoint_every == 0 or step == num_steps:
      progress["data"] = batches.get_state()
      progress["wall_seconds"] += time.time() - segment_wall
      segment_wall = time.time()
      checkpointer.save(step, state, progress)
    interval_start += time.time() - pause
  bar.close()
  checkpointer.close()

  num_heatmaps = config.eval.num_heatmaps if evaluator.attentional else 0
  label = run_label(config)
  final = {}
  for split in config.eval.splits:
    evaluation = evaluator.run(state.params, split, num_heatmaps)
    final[split] = evaluation.metrics
    if run.writer:
      write_reports(
        run.path, split, evaluation, data.splits[split].source_texts, data.src_vocab, label
      )
  keep_if_best(num_steps, final["validation"])
  best.close()
  run.append_metrics(
    {
      "step": num_steps,
      **{f"{split}_{k}": v for split, result in final.items() for k, v in result.items()},
    }
  )
  wall = progress["wall_seconds"] + time.time() - segment_wall
  result = {
    "status": "completed",
    "config": config.to_dict(),
    "num_params": num_params,
    "wall_seconds": wall,
    "train_tokens_per_second": progress["train_tokens"] / max(progress["train_seconds"], 1e-9),
    "metrics": final,
  }
  run.write_json(RESULT, result)
  _note(f"Finished in {wall:.1f} s (this process: {time.time() - start_wall:.1f} s).")
  return result
