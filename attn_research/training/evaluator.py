"""Evaluating a split: device passes (teacher forcing and decoding) and host scoring."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from attn_research.config.fields import NON_NEGATIVE, POSITIVE, BatchSize, Splits, field
from attn_research.data.pipeline import decode_batches, eval_batches
from attn_research.data.vocab import EOS_ID
from attn_research.decoding import beam_search, greedy_decode
from attn_research.decoding.config import DecodeConfig
from attn_research.decoding.unk_replace import load_dictionary, replace_unknowns
from attn_research.evaluation import alignment, metrics, significance
from attn_research.model import DECODERS, Seq2Seq
from attn_research.training import parallel, steps
from attn_research.training.data import Data
from attn_research.training.precision import compute_params
from attn_research.training.reports import Evaluation


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """`eval`: what the final evaluation covers and reports."""

  batch_size: int = field(BatchSize(), 512, "sentences per evaluation batch")
  splits: tuple[str, ...] = field(
    Splits(),
    ("validation", "test"),
    "evaluated at the end, into result.json; validation picks the best checkpoint",
  )
  length_bin: int = field(POSITIVE, 10, "source tokens per bin of BLEU by length")
  num_heatmaps: int = field(NON_NEGATIVE, 4, "attention heatmaps of each split's first examples")


def make_decoder(
  model: Seq2Seq,
  decode: DecodeConfig,
  max_len: int,
  dtype: str = "float32",
  n_best: int = 1,
):
  """`(params, src, src_mask) → (tokens, weights)`: greedy for beam_size 0, else beam;
  computed in `dtype` from float32 parameters, float32 weights out. With `n_best` > 1:
  `(tokens, weights, scores)` of beam search's n best, along a second axis."""
  if decode.beam_size == 0:
    search = functools.partial(greedy_decode, model, max_len=max_len)
  else:
    search = functools.partial(beam_search, model, options=decode, max_len=max_len, n_best=n_best)

  def decoder(params, src, src_mask):
    outputs = search(compute_params(params, dtype), src, src_mask)
    tokens, weights = outputs[0], outputs[1].astype(jnp.float32)
    return (tokens, weights, outputs[2]) if n_best > 1 else (tokens, weights)

  return decoder


@dataclasses.dataclass
class DeviceOutputs:
  """What the device passes over a split give, per example index.

  Attributes:
    nll_sum, tokens: teacher-forced cross-entropy summed over the split's target tokens.
    support_sum: teacher forcing's attention support (source positions with a nonzero
      weight) summed over the same tokens.
    decoded: decoded ids `[max_len]` (up to and past `</s>`).
    weights: decoding's attention `[max_len, src_len]`, for the examples that need it.
    forced: the most attended source position per reference token (forced decoding;
      −1: none).
    hard: the same from a monotonic alignment's test-time process, else empty.
  """

  nll_sum: float
  tokens: float
  support_sum: float
  decoded: dict[int, np.ndarray]
  weights: dict[int, np.ndarray]
  forced: dict[int, np.ndarray]
  hard: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)


def _real_rows(host_batch):
  """`(row, example index)` of a batch's rows that hold an example (not filler)."""
  return [(row, int(i)) for row, i in enumerate(host_batch["index"]) if i >= 0]


class Evaluator:
  """Teacher-forced loss/perplexity and forced-decoding alignments, then decoding and its
  metrics, over every example of a split."""

  def __init__(
    self,
    model: Seq2Seq,
    mesh: Mesh,
    data: Data,
    eval_config: EvalConfig,
    decode: DecodeConfig,
    dtype: str = "float32",
  ):
    self.mesh = mesh
    self.data = data
    self.batch_size = eval_config.batch_size
    self.length_bin = eval_config.length_bin
    self.attentional = DECODERS.get(model.config.decoder.type).attentional
    self._batches: dict[str, tuple[list, list]] = {}  # split → (forcing, decoding)
    # Replicated outputs: every process gets every row, to compute the same metrics.
    repl = parallel.replicated(mesh)
    self._eval_step = jax.jit(
      functools.partial(steps.eval_step, model=model, dtype=dtype), out_shardings=repl
    )
    self._decode = jax.jit(
      make_decoder(model, decode, data.buckets.target[-1], dtype), out_shardings=repl
    )
    self._unk_replace = decode.unk_replace
    self._dictionary = load_dictionary(decode.unk_dictionary) if decode.unk_dictionary else None

  def __call__(self, params, split: str) -> dict:
    return self.run(params, split).metrics

  def run(self, params, split: str, num_attention: int = 0) -> Evaluation:
    """Evaluates every example of `split`, keeping the attention of the first
    `num_attention` examples."""
    return self.score(split, self.device_pass(params, split, num_attention), num_attention)

  def device_pass(self, params, split: str, num_attention: int = 0) -> DeviceOutputs:
    """Runs teacher forcing and decoding over `split`; keeps decoding's attention for the
    first `num_attention` examples (every example when unknown words are replaced)."""
    if split not in self._batches:
      self._batches[split] = (
        eval_batches(self.data.splits[split], self.data.buckets, self.batch_size, split),
        decode_batches(self.data.splits[split], self.data.buckets, self.batch_size, split),
      )
    forcing, decoding = self._batches[split]
    targets = self.data.splits[split].targets
    out = DeviceOutputs(0.0, 0.0, 0.0, {}, {}, {})
    for host_batch in forcing:
      batch = parallel.shard_batch(host_batch, self.mesh)
      sums, links = jax.device_get(self._eval_step(params, batch))
      out.nll_sum += float(sums["nll_sum"])
      out.tokens += float(sums["tokens"])
      out.support_sum += float(sums["support_sum"])
      for row, index in _real_rows(host_batch):
        out.forced[index] = links["forced"][row, : len(targets[index])]
        if "hard" in links:
          out.hard[index] = links["hard"][row, : len(targets[index])]
    for host_batch in decoding:
      batch = parallel.shard_batch(host_batch, self.mesh)
      decoded, weights = jax.device_get(self._decode(params, batch["src"], batch["src_mask"]))
      for row, index in _real_rows(host_batch):
        out.decoded[index] = decoded[row]
        if self._unk_replace or index < num_attention:
          out.weights[index] = weights[row]
    return out

  def score(self, split: str, outputs: DeviceOutputs, num_attention: int = 0) -> Evaluation:
    """The metrics of `split` from its device outputs (host only)."""
    split_data = self.data.splits[split]
    hyps = [self._detokenise(split, i, outputs) for i in range(len(split_data))]
    refs = split_data.target_texts
    statistics = metrics.sentence_statistics(hyps, refs, self.data.target_lang)
    gold, expected = self.data.gold.get(split, {}), {}
    if "alignment" in gold and self.attentional:
      sure = [alignment.parse_pharaoh(a) for a in gold["alignment"]]
      possible = [
        alignment.parse_pharaoh(a) for a in gold.get("possible_alignment", gold["alignment"])
      ]

      def link_statistics(links: dict[int, np.ndarray]) -> np.ndarray:
        predicted = [
          {(int(s), t) for t, s in enumerate(links[i]) if s >= 0} for i in range(len(hyps))
        ]
        return alignment.aer_statistics(predicted, sure, possible)

      # A monotonic alignment is evaluated as it decodes (hard), and as it trains.
      statistics["aer"] = link_statistics(outputs.hard or outputs.forced)
      if outputs.hard:
        expected["aer_expected"] = metrics.SCORES["aer"](link_statistics(outputs.forced).sum(0))
    result = {
      "loss": outputs.nll_sum / outputs.tokens,
      "ppl": metrics.perplexity(outputs.nll_sum, outputs.tokens),
      **metrics.corpus_scores(statistics),
      **expected,
      "bleu_signature": metrics.BLEU_SIGNATURE,
      "num_examples": len(split_data),
      "bleu_by_length": metrics.bleu_by_length(
        statistics["bleu"], list(split_data.sources.lengths), self.length_bin
      ),
    }
    if self.attentional:  # sparse normalisers attend to fewer positions than softmax
      result["attention_support"] = outputs.support_sum / outputs.tokens
    attention = {}
    for index in range(min(num_attention, len(split_data))):
      ids = list(outputs.decoded[index])
      length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
      target_tokens = [self.data.tgt_vocab.tokens[i] for i in ids[:length]]
      attention[index] = (target_tokens, outputs.weights[index][:length])
    return Evaluation(
      result,
      hyps,
      attention,
      significance.SentenceStatistics(significance.fingerprint(refs), statistics),
    )

  def _detokenise(self, split: str, index: int, outputs: DeviceOutputs) -> str:
    decoded = outputs.decoded[index]
    if not self._unk_replace:
      return self.data.tgt_vocab.decode(decoded)
    source = self.data.src_vocab.split(self.data.splits[split].source_texts[index])
    return replace_unknowns(
      decoded, outputs.weights[index], source, self.data.tgt_vocab, self._dictionary
    )
