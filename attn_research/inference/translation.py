"""Translating raw text with a trained run (`python -m experiments.translate`).

Lines are read lazily in chunks, each chunk decoded in batches of similar source length
in the run's padded shapes and returned in input order, so a file larger than memory
streams through. An empty line gives an empty translation without decoding. A line longer
than the run's largest source bucket is decoded in a larger shape, the next multiple of
that bucket (and a proportionally longer output limit), which compiles once per multiple;
only a model whose parameters are sized by the longest source (`location` attention)
refuses such a line, unless `truncate` cuts every over-long line to the largest bucket.
"""

import dataclasses
import functools
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from attn_research.config import fields
from attn_research.data.pipeline import Buckets, EncodedSplit, decode_batches
from attn_research.data.vocab import EOS_ID
from attn_research.decoding.config import DecodeConfig
from attn_research.decoding.ensemble import Ensemble
from attn_research.decoding.unk_replace import load_dictionary, replace_unknowns
from attn_research.errors import ConfigError
from attn_research.inference import evaluation
from attn_research.inference.evaluation import RunVocabs
from attn_research.model import DECODERS, Seq2Seq
from attn_research.training import experiment, parallel
from attn_research.training.evaluator import make_decoder


@dataclasses.dataclass
class Translation:
  """One line's translation.

  Attributes:
    text: the detokenised translation.
    source_tokens: the line's source tokens, as the model read them.
    target_tokens: the translation's tokens, ending in `</s>` when it finished.
    attention: `[len(target_tokens), len(source_tokens)]` weights, when kept.
    score: beam search's score of the translation, with an n-best list.
    alternatives: the next best translations of an n-best list, in order.
  """

  text: str
  source_tokens: list[str]
  target_tokens: list[str]
  attention: np.ndarray | None = None
  score: float | None = None
  alternatives: list["Translation"] = dataclasses.field(default_factory=list)

  @property
  def n_best(self) -> list["Translation"]:
    """This translation and its alternatives, best first."""
    return [self, *self.alternatives]

  def to_json(self, index: int) -> str:
    """A JSON line: the pair's tokens and attention weights (4 decimals); with an n-best
    list, each hypothesis's as `n_best`."""
    record = {"index": index, **self._record()}
    if self.alternatives:
      record["n_best"] = [t._record() for t in self.n_best]
    return json.dumps(record, ensure_ascii=False)

  def _record(self) -> dict:
    weights = None if self.attention is None else np.round(self.attention, 4).tolist()
    record = {
      "source_tokens": self.source_tokens,
      "target_tokens": self.target_tokens,
      "translation": self.text,
      "attention": weights,
    }
    return record if self.score is None else {**record, "score": self.score}


class Translator:
  """Decodes raw text lines with one model or an `Ensemble` (`params`: the tuple of its
  members'), `decode`'s search (greedy or beam)."""

  def __init__(
    self,
    model: Seq2Seq | Ensemble,
    params,
    vocabs: RunVocabs,
    decode: ml_collections.ConfigDict,
    mesh: Mesh,
    batch_size: int,
    dtype: str = "float32",
    keep_attention: bool = False,
    truncate: bool = False,
    n_best: int = 1,
  ):
    if n_best > max(decode.beam_size, 1):
      raise ConfigError(
        f"--n_best={n_best} needs a beam at least as wide; set "
        f"--config.decode.beam_size={n_best} or more (it is {decode.beam_size})."
      )
    self.n_best = n_best
    self.model = model
    self.params = params
    self.vocabs = vocabs
    self.decode = fields.parse(DecodeConfig, decode, "decode.")
    self.mesh = mesh
    self.batch_size = batch_size
    self.dtype = dtype
    self.truncate = truncate
    self.keep_attention = keep_attention or decode.unk_replace
    self._dictionary = load_dictionary(decode.unk_dictionary) if decode.unk_dictionary else None
    # A member whose location attention is sized by the longest source fixes the shapes.
    self._location = any(
      DECODERS.get(m.config.decoder.type).attentional and m.config.attention.score == "location"
      for m in getattr(model, "models", (model,))
    )
    self._decoders = {}  # output limit → jitted search

  def _decoder(self, max_len: int):
    if max_len not in self._decoders:
      search = make_decoder(self.model, self.decode, max_len, self.dtype, self.n_best)
      self._decoders[max_len] = jax.jit(search, out_shardings=parallel.replicated(self.mesh))
    return self._decoders[max_len]

  def _encode(self, line: str, number: int) -> np.ndarray:
    ids = self.vocabs.src_vocab.encode(line)
    longest = self.vocabs.buckets.source[-1]
    if len(ids) <= longest:
      return ids
    if self.truncate:
      return ids[:longest]
    if self._location:
      raise ConfigError(
        f"Line {number} has {len(ids)} source tokens, but this model's location attention "
        f"scores at most {longest} positions (data.source_buckets); pass --truncate to cut "
        "longer lines."
      )
    return ids

  def translate_chunk(self, lines: list[str], first_number: int = 1) -> list[Translation]:
    """The translations of `lines`, in their order (`first_number`: the first's line
    number, for errors)."""
    sources = [self._encode(line, first_number + i) for i, line in enumerate(lines)]
    buckets = self.vocabs.buckets
    longest = buckets.source[-1]
    # Each line's padded-shape multiple: 1 for the run's buckets, k for k × the largest.
    multiples = np.array([max(1, -(-len(s) // longest)) for s in sources])
    decoded: dict[int, tuple] = {}
    for k in np.unique(multiples):
      members = [i for i in range(len(lines)) if multiples[i] == k and len(sources[i])]
      if not members:
        continue
      shapes = buckets if k == 1 else Buckets((k * longest,), (k * buckets.target[-1],))
      split = EncodedSplit.from_sources([sources[i] for i in members], [lines[i] for i in members])
      search = self._decoder(shapes.target[-1])
      for host_batch in decode_batches(split, shapes, self.batch_size, "input"):
        batch = parallel.shard_batch(host_batch, self.mesh)
        outputs = jax.device_get(search(self.params, batch["src"], batch["src_mask"]))
        for row, position in enumerate(host_batch["index"]):
          if position >= 0:
            decoded[members[position]] = tuple(x[row] for x in outputs)
    return [self._translation(lines[i], len(sources[i]), decoded.get(i)) for i in range(len(lines))]

  def _translation(self, line: str, source_length: int, output: tuple | None) -> Translation:
    """`output`: (tokens, weights), or with an n-best list (tokens, weights, scores) with
    a leading n-best axis; None for an empty line."""
    # The words themselves, not their ids: unknown words stay readable (and replaceable).
    source_tokens = self.vocabs.src_vocab.split(line)[:source_length]
    if output is None:  # an empty line
      empty = Translation("", source_tokens, [], np.zeros((0, 0)) if self.keep_attention else None)
      if self.n_best > 1:
        empty.alternatives = [dataclasses.replace(empty) for _ in range(self.n_best - 1)]
      return empty
    if self.n_best == 1:
      return self._hypothesis(source_tokens, *output)
    best, *others = [
      dataclasses.replace(self._hypothesis(source_tokens, ids, weights), score=float(score))
      for ids, weights, score in zip(*output, strict=True)
    ]
    best.alternatives = others
    return best

  def _hypothesis(
    self, source_tokens: list[str], ids: np.ndarray, weights: np.ndarray
  ) -> Translation:
    tgt_vocab = self.vocabs.tgt_vocab
    source_length = len(source_tokens)
    ids = list(ids)
    length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
    weights = weights[:length, :source_length]
    if self.decode.unk_replace:
      text = replace_unknowns(np.array(ids), weights, source_tokens, tgt_vocab, self._dictionary)
    else:
      text = tgt_vocab.decode(ids)
    target_tokens = [tgt_vocab.tokens[i] for i in ids[:length]]
    return Translation(text, source_tokens, target_tokens, weights if self.keep_attention else None)

  def translate(self, lines: Iterable[str], chunk_size: int = 0) -> Iterator[Translation]:
    """Translations of `lines` in order, read `chunk_size` lines at a time (0: 16 batches)."""
    chunk_size = chunk_size or 16 * self.batch_size
    number = 1
    for chunk in iter(functools.partial(_take, iter(lines), chunk_size), []):
      yield from self.translate_chunk(chunk, number)
      number += len(chunk)


def load_translator(
  workdirs: Sequence[str],
  config: ml_collections.ConfigDict,
  checkpoint: str = "best",
  keep_attention: bool = False,
  truncate: bool = False,
  n_best: int = 1,
) -> tuple[Translator, list[int]]:
  """A `Translator` of the runs in `workdirs` at their `checkpoint` (several: an
  ensemble), and each checkpoint's step.

  `config` is the first run's own with `decode.*` and `eval.*` overrides, which set the
  search and the shapes for all; the runs' data is not read (its files may be gone), only
  their vocabularies and checkpoints.

  Raises:
    ConfigError: a run without vocabularies or checkpoint, or runs whose source or
      target vocabularies differ.
  """
  mesh = parallel.make_mesh()
  first = evaluation.open_run(workdirs[0], config)
  experiment.validate(config, mesh.size, only=("decode.", "eval."))
  vocabs = RunVocabs.of_run(first, config)
  model, params, steps = evaluation.restore_runs(
    first, config, vocabs, workdirs[1:], checkpoint, mesh
  )
  translator = Translator(
    model,
    params,
    vocabs,
    config.decode,
    mesh,
    config.eval.batch_size,
    config.train.dtype,
    keep_attention,
    truncate,
    n_best,
  )
  return translator, steps


def _take(lines: Iterator[str], n: int) -> list[str]:
  return list(itertools.islice(lines, n))
