"""The encoder–decoder model assembled from config strings."""

import dataclasses

import flax.linen as nn
import jax
import ml_collections

from attn_research.attention import AttentionConfig, Memory
from attn_research.config import fields
from attn_research.config.fields import POSITIVE, Choice, Float, field, section
from attn_research.model.bridge import BRIDGES
from attn_research.model.decoder import DECODERS, DecoderConfig, DecoderState, logits
from attn_research.model.encoder import ENCODERS, EncoderConfig


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """`model`: the architecture; frozen (and hashable) so it can be a static jit argument.
  The vocabulary sizes come from the data, not the config."""

  embedding_size: int = field(POSITIVE, 64, "source and target embedding size")
  dropout: float = field(Float(low=0, high=1, high_open=True), 0.0, "dropout rate")
  bridge: str = field(
    Choice(names=BRIDGES), "last", "zero | last (Luong) | dense (Bahdanau: tanh(W ←h_1))"
  )
  encoder: EncoderConfig = section(EncoderConfig, "the encoder")
  decoder: DecoderConfig = section(DecoderConfig, "the decoder")
  attention: AttentionConfig = section(AttentionConfig, "the attention")
  src_vocab_size: int = 0
  tgt_vocab_size: int = 0

  @classmethod
  def from_config(
    cls,
    model: ml_collections.ConfigDict,
    src_vocab_size: int,
    tgt_vocab_size: int,
    longest_source: int,
  ) -> "ModelConfig":
    """`longest_source`: the data's largest source bucket, the `location` score's default
    reach when `model.attention.max_source_length` is 0."""
    config = fields.parse(cls, model, "model.")
    return dataclasses.replace(
      config,
      src_vocab_size=src_vocab_size,
      tgt_vocab_size=tgt_vocab_size,
      attention=config.attention.resolved(longest_source),
    )

  @property
  def monotonic(self) -> bool:
    """Whether the decoder attends with a monotonic alignment, whose test-time (hard)
    attention is not the expectation it trains with."""
    return DECODERS.get(self.decoder.type).attentional and self.attention.monotonic

  def validate(self) -> None:
    """Raises a one-line `ConfigError` for an architecture that cannot be built; needs no
    data and no model init.

    The `dot`, `scaled_dot` and `cosine` scores need equal query and key sizes. Every
    decoder's query is one of its states and every encoder outputs states of
    `encoder.hidden_size` (a bidirectional layer concatenates two halves, checked even
    here), the decoder's state size, so the sizes cannot differ.
    """
    self.encoder.validate()
    self.decoder.validate(self.encoder, self.embedding_size)
    if DECODERS.get(self.decoder.type).attentional:
      self.attention.validate(self.encoder.hidden_size)
    BRIDGES.get(self.bridge).validate(self.encoder.num_layers, self.decoder.num_layers)


class Seq2Seq(nn.Module):
  """Encoder → bridge → decoder with attention over the encoder states.

  Attributes:
    config: the architecture, validated when the model is set up.
  """

  config: ModelConfig

  def setup(self):
    c = self.config
    c.validate()
    self.encoder = ENCODERS.get(c.encoder.type)(
      c.encoder,
      vocab_size=c.src_vocab_size,
      embedding_size=c.embedding_size,
      dropout=c.dropout,
      name="encoder",
    )
    self.bridge = BRIDGES.get(c.bridge)(
      num_layers=c.decoder.num_layers,
      hidden_size=c.encoder.hidden_size,
      cell=c.encoder.cell,
      name="bridge",
    )
    decoder = DECODERS.get(c.decoder.type)
    attention = {"attention_config": c.attention} if decoder.attentional else {}
    self.decoder = decoder(
      c.decoder,
      vocab_size=c.tgt_vocab_size,
      embedding_size=c.embedding_size,
      cell=c.encoder.cell,
      hidden_size=c.encoder.hidden_size,
      dropout=c.dropout,
      name="decoder",
      **attention,
    )

  def encode(
    self, src: jax.Array, src_mask: jax.Array, train: bool = False, hard: bool = False
  ) -> tuple[Memory, DecoderState]:
    """`[batch, src_len]` ids and bool mask → attention memory and initial decoder state.

    `hard`: monotonic alignments run their test-time process (decoding always does);
    otherwise their expectation, as in training."""
    encoded = self.encoder(src, src_mask, train)
    return self.decoder.prepare(encoded, src_mask, self.bridge(encoded), hard)

  def decode_step(
    self, memory: Memory, state: DecoderState, tokens: jax.Array
  ) -> tuple[DecoderState, jax.Array, jax.Array]:
    """One decoding step from `[batch]` previous tokens (inference: no dropout)."""
    return self.decoder.step(memory, state, tokens)

  def features(
    self,
    src: jax.Array,
    src_mask: jax.Array,
    tgt_in: jax.Array,
    train: bool = False,
    hard: bool = False,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Teacher forcing up to the output layer, for a loss that applies it in chunks
    (`hard` as in `encode`).

    Returns:
      the output layer's inputs `[batch, tgt_len, features]` (dropout applied when
      training), its matrix W_s `[features, vocab]` and the attention weights
      `[batch, tgt_len, src_len]`.
    """
    memory, state = self.encode(src, src_mask, train, hard)
    features, weights = self.decoder.features(memory, state, tgt_in, train)
    return features, self.decoder.output_matrix(), weights

  def sampled_features(
    self,
    src: jax.Array,
    src_mask: jax.Array,
    tgt_in: jax.Array,
    keep_gold: jax.Array,
    train: bool = False,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`features` under scheduled sampling: the decoder reads `tgt_in` where `keep_gold`
    (`[batch, tgt_len]` bool) and its own previous argmax elsewhere."""
    memory, state = self.encode(src, src_mask, train)
    features, weights = self.decoder.sampled_features(memory, state, tgt_in, keep_gold, train)
    return features, self.decoder.output_matrix(), weights

  def __call__(
    self,
    src: jax.Array,
    src_mask: jax.Array,
    tgt_in: jax.Array,
    train: bool = False,
    hard: bool = False,
  ) -> tuple[jax.Array, jax.Array]:
    """Teacher forcing: `[batch, tgt_len]` inputs → logits `[batch, tgt_len, vocab]` and
    attention weights `[batch, tgt_len, src_len]` (`hard` as in `encode`)."""
    features, output_matrix, weights = self.features(src, src_mask, tgt_in, train, hard)
    return logits(features, output_matrix), weights
