"""Source encoders: embedding → stacked recurrent layers, uni- or bidirectional."""

import functools

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from attn_research.errors import ConfigError
from attn_research.model.rnn import CELLS, Carry, reverse_padded
from attn_research.registry import Registry

ENCODERS: Registry = Registry("encoder", "model.encoder.type")


@flax.struct.dataclass
class EncoderOutput:
  """Attributes:
  states: `[batch, src_len, hidden]` top-layer states h̄_s (0 on padding).
  final: per layer, the carry after the last real source token, each of size `hidden`
    (for a bidirectional layer: forward and backward carries concatenated).
  """

  states: jax.Array
  final: tuple[Carry, ...]


class RNNEncoder(nn.Module):
  """Stacked recurrent encoder.

  Attributes:
    vocab_size: source vocabulary size.
    embedding_size: source embedding size.
    hidden_size: size of each output state; a bidirectional layer runs two directions of
      `hidden_size // 2` and concatenates them.
    num_layers: stacked layers.
    cell: name in `CELLS`.
    dropout: dropout rate on every layer's input (Zaremba et al.: non-recurrent only).
    bidirectional: every layer reads the source both ways.
  """

  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell: str
  dropout: float
  bidirectional: bool

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array, train: bool) -> EncoderOutput:
    """Encodes `[batch, src_len]` token ids with `[batch, src_len]` bool mask."""
    cell_cls = CELLS.get(self.cell)
    if self.bidirectional and self.hidden_size % 2:
      raise ConfigError(
        f"A bidirectional encoder splits model.encoder.hidden_size={self.hidden_size} "
        "between two directions; choose an even size."
      )
    directions = 2 if self.bidirectional else 1
    size = self.hidden_size // directions
    lengths = mask.sum(axis=1)
    xs = nn.Embed(self.vocab_size, self.embedding_size, name="embed")(tokens)
    finals = []
    for layer in range(self.num_layers):
      xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
      in_size = xs.shape[-1]
      outputs, carries = [], []
      for d in range(directions):
        cell = cell_cls(input_size=in_size, hidden_size=size, name=f"layer{layer}_dir{d}")
        inputs = xs if d == 0 else reverse_padded(xs, lengths)
        out, carry = cell.scan(inputs, cell.initial_carry(tokens.shape[0]), mask)
        outputs.append(out if d == 0 else reverse_padded(out, lengths))
        carries.append(carry)
      xs = jnp.concatenate(outputs, axis=-1)
      finals.append(tuple(jnp.concatenate(parts, axis=-1) for parts in zip(*carries, strict=True)))
    return EncoderOutput(states=xs, final=tuple(finals))


ENCODERS.register("uni")(functools.partial(RNNEncoder, bidirectional=False))
ENCODERS.register("bi")(functools.partial(RNNEncoder, bidirectional=True))
