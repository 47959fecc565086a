"""Source encoders: embedding → stacked recurrent layers.

  * `uni`: every layer left to right.
  * `bi`: every layer reads both ways; each direction has `hidden_size // 2` units and
    their states are concatenated (Bahdanau's annotations h_j = [→h_j; ←h_j]).
  * `gnmt`: a bidirectional first layer, then unidirectional layers, with residual
    connections from the third layer up (Wu et al. 2016 §3).

`residual=True` adds residual connections to every layer whose input and output sizes
match (from the second layer up). `reverse_source=True` feeds each sentence reversed
(Sutskever et al. 2014; Luong's "+reverse"); the states are put back in source order so
attention weights still index the source as written.
"""

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
  states: `[batch, src_len, hidden]` top-layer states h̄_s in source order (0 on padding).
  final: per layer, the carry after the whole sentence was read, each of size `hidden`
    (a bidirectional layer concatenates its forward and backward carries).
  backward_first: `[batch, hidden // 2]` the backward direction's state at the first
    source word (Bahdanau's ←h_1) of the top bidirectional layer, or `[batch, hidden]`
    the top layer's final state for a unidirectional encoder.
  """

  states: jax.Array
  final: tuple[Carry, ...]
  backward_first: jax.Array


class RNNEncoder(nn.Module):
  """Stacked recurrent encoder.

  Attributes:
    vocab_size: source vocabulary size.
    embedding_size: source embedding size.
    hidden_size: size of each output state.
    num_layers: stacked layers.
    cell: name in `CELLS`.
    dropout: dropout rate on every layer's input (Zaremba et al.: non-recurrent only).
    bidirectional_layers: how many of the bottom layers are bidirectional.
    residual_from: 0-based index of the first layer with a residual connection
      (`num_layers` for none).
    reverse_source: read each sentence backwards.
  """

  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell: str
  dropout: float
  bidirectional_layers: int
  residual_from: int
  reverse_source: bool = False

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array, train: bool) -> EncoderOutput:
    """Encodes `[batch, src_len]` token ids with `[batch, src_len]` bool mask."""
    cell_cls = CELLS.get(self.cell)
    if self.bidirectional_layers and self.hidden_size % 2:
      raise ConfigError(
        f"A bidirectional layer splits model.encoder.hidden_size={self.hidden_size} "
        "between two directions; choose an even size."
      )
    lengths = mask.sum(axis=1)
    if self.reverse_source:
      tokens = reverse_padded(tokens, lengths)
    xs = nn.Embed(self.vocab_size, self.embedding_size, name="embed")(tokens)
    finals, backward_first = [], None
    for layer in range(self.num_layers):
      inputs = xs
      xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
      directions = 2 if layer < self.bidirectional_layers else 1
      size = self.hidden_size // directions
      outputs, carries = [], []
      for d in range(directions):
        cell = cell_cls(input_size=xs.shape[-1], hidden_size=size, name=f"layer{layer}_dir{d}")
        seq = xs if d == 0 else reverse_padded(xs, lengths)
        out, carry = cell.scan(seq, cell.initial_carry(tokens.shape[0]), mask)
        outputs.append(out if d == 0 else reverse_padded(out, lengths))
        carries.append(carry)
      if directions == 2:
        backward_first = cell.output(carries[1])
      xs = jnp.concatenate(outputs, axis=-1)
      if layer >= self.residual_from and inputs.shape[-1] == xs.shape[-1]:
        xs = xs + inputs
      finals.append(tuple(jnp.concatenate(parts, axis=-1) for parts in zip(*carries, strict=True)))
    states = reverse_padded(xs, lengths) if self.reverse_source else xs
    if backward_first is None:
      backward_first = cell_cls.output(finals[-1])
    return EncoderOutput(states=states, final=tuple(finals), backward_first=backward_first)


def _encoder(bidirectional: str, residual: str):
  """Registers a layout; `residual` is "gnmt" (from layer 3) or taken from the config."""

  def build(*, num_layers: int, residual_connections: bool = False, **kwargs) -> RNNEncoder:
    bi = {"none": 0, "all": num_layers, "first": 1}[bidirectional]
    start = 2 if residual == "gnmt" else 1 if residual_connections else num_layers
    return RNNEncoder(num_layers=num_layers, bidirectional_layers=bi, residual_from=start, **kwargs)

  return build


ENCODERS.register("uni")(_encoder("none", "config"))
ENCODERS.register("bi")(_encoder("all", "config"))
ENCODERS.register("gnmt")(_encoder("first", "gnmt"))
