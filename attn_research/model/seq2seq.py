"""The encoder–decoder model assembled from config strings."""

import dataclasses

import flax.linen as nn
import jax
import ml_collections

from attn_research.attention import Memory
from attn_research.model.bridge import BRIDGES
from attn_research.model.decoder import DECODERS, DecoderState
from attn_research.model.encoder import ENCODERS


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The model part of an experiment config, frozen so it can be a static jit argument.

  Field meanings are documented in `experiments/configs/dates.py`.
  """

  src_vocab_size: int
  tgt_vocab_size: int
  embedding_size: int
  dropout: float
  encoder_type: str
  encoder_cell: str
  encoder_layers: int
  hidden_size: int
  decoder_type: str
  decoder_layers: int
  input_feeding: bool
  score: str
  alignment: str
  window: int = 10
  attention_size: int = 0
  attention_init: str = "paper"
  max_source_length: int = 0
  residual: bool = False
  reverse_source: bool = False
  bridge: str = "last"
  tfnmt_compat: bool = False
  deep_output: bool = True
  maxout_size: int = 0
  tie_embeddings: bool = False

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
    return cls(
      src_vocab_size=src_vocab_size,
      tgt_vocab_size=tgt_vocab_size,
      embedding_size=model.embedding_size,
      dropout=model.dropout,
      encoder_type=model.encoder.type,
      encoder_cell=model.encoder.cell,
      encoder_layers=model.encoder.num_layers,
      hidden_size=model.encoder.hidden_size,
      decoder_type=model.decoder.type,
      decoder_layers=model.decoder.num_layers,
      input_feeding=model.decoder.input_feeding,
      score=model.attention.score,
      alignment=model.attention.alignment,
      window=model.attention.window,
      attention_size=model.attention.size,
      attention_init=model.attention.init,
      max_source_length=model.attention.max_source_length or longest_source,
      residual=model.encoder.residual,
      reverse_source=model.encoder.reverse_source,
      bridge=model.bridge,
      tfnmt_compat=model.decoder.tfnmt_compat,
      deep_output=model.decoder.deep_output,
      maxout_size=model.decoder.maxout_size,
      tie_embeddings=model.decoder.tie_embeddings,
    )


class Seq2Seq(nn.Module):
  """Encoder → bridge → decoder with attention over the encoder states.

  Attributes:
    config: the architecture.
  """

  config: ModelConfig

  def setup(self):
    c = self.config
    self.encoder = ENCODERS.get(c.encoder_type)(
      vocab_size=c.src_vocab_size,
      embedding_size=c.embedding_size,
      hidden_size=c.hidden_size,
      num_layers=c.encoder_layers,
      cell=c.encoder_cell,
      dropout=c.dropout,
      residual_connections=c.residual,
      reverse_source=c.reverse_source,
      name="encoder",
    )
    self.bridge = BRIDGES.get(c.bridge)(
      num_layers=c.decoder_layers, hidden_size=c.hidden_size, cell=c.encoder_cell, name="bridge"
    )
    self.decoder = DECODERS.get(c.decoder_type)(
      vocab_size=c.tgt_vocab_size,
      embedding_size=c.embedding_size,
      hidden_size=c.hidden_size,
      num_layers=c.decoder_layers,
      cell=c.encoder_cell,
      dropout=c.dropout,
      input_feeding=c.input_feeding,
      score=c.score,
      alignment=c.alignment,
      window=c.window,
      attention_size=c.attention_size,
      attention_init=c.attention_init,
      max_source_length=c.max_source_length,
      tfnmt_compat=c.tfnmt_compat,
      deep_output=c.deep_output,
      maxout_size=c.maxout_size,
      tie_embeddings=c.tie_embeddings,
      name="decoder",
    )

  def encode(
    self, src: jax.Array, src_mask: jax.Array, train: bool = False
  ) -> tuple[Memory, DecoderState]:
    """`[batch, src_len]` ids and bool mask → attention memory and initial decoder state."""
    encoded = self.encoder(src, src_mask, train)
    return self.decoder.prepare(encoded, src_mask, self.bridge(encoded))

  def decode_step(
    self, memory: Memory, state: DecoderState, tokens: jax.Array
  ) -> tuple[DecoderState, jax.Array, jax.Array]:
    """One decoding step from `[batch]` previous tokens (inference: no dropout)."""
    return self.decoder.step(memory, state, tokens)

  def __call__(
    self, src: jax.Array, src_mask: jax.Array, tgt_in: jax.Array, train: bool = False
  ) -> tuple[jax.Array, jax.Array]:
    """Teacher forcing: `[batch, tgt_len]` inputs → logits `[batch, tgt_len, vocab]` and
    attention weights `[batch, tgt_len, src_len]`."""
    memory, state = self.encode(src, src_mask, train)
    return self.decoder(memory, state, tgt_in, train)
