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

import dataclasses

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from attn_research.config.fields import POSITIVE, Bool, Choice, field
from attn_research.errors import ConfigError
from attn_research.model.rnn import CELLS, Carry, reverse_padded, scan_together
from attn_research.registry import Registry

ENCODERS: Registry[type["RNNEncoder"]] = Registry("encoder", "model.encoder.type")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """`model.encoder`: the encoder's layout."""

  type: str = field(Choice(names=ENCODERS), "bi", "uni | bi | gnmt")
  cell: str = field(Choice(names=CELLS), "lstm", "lstm | gru; the decoder uses the same cell")
  num_layers: int = field(POSITIVE, 1, "stacked recurrent layers")
  hidden_size: int = field(
    POSITIVE,
    256,
    "the states' size and the decoder's state size; a bidirectional layer gives each "
    "direction half",
  )
  residual: bool = field(
    Bool(),
    False,
    "uni, bi: residual connections from the second layer up (gnmt has them from the third)",
  )
  reverse_source: bool = field(Bool(), False, "read sources backwards (Luong's +reverse)")

  def validate(self) -> None:
    """Raises a one-line `ConfigError` for a layout that cannot be built."""
    if ENCODERS.get(self.type).bidirectional_layers(self.num_layers) and self.hidden_size % 2:
      raise ConfigError(
        f"model.encoder.hidden_size={self.hidden_size} is odd, but model.encoder.type="
        f"{self.type!r} splits it between two directions; choose an even size."
      )


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
  """Stacked recurrent encoder; each registered layout says which layers are
  bidirectional and where residual connections start.

  Attributes:
    config: the encoder section.
    vocab_size: source vocabulary size.
    embedding_size: source embedding size.
    dropout: dropout rate on every layer's input (Zaremba et al.: non-recurrent only).
  """

  config: EncoderConfig
  vocab_size: int
  embedding_size: int
  dropout: float

  @staticmethod
  def bidirectional_layers(num_layers: int) -> int:
    """How many of the bottom layers read both ways."""
    del num_layers
    return 0

  @staticmethod
  def residual_from(config: EncoderConfig) -> int:
    """0-based index of the first layer with a residual connection (`num_layers`: none)."""
    return 1 if config.residual else config.num_layers

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array, train: bool) -> EncoderOutput:
    """Encodes `[batch, src_len]` token ids with `[batch, src_len]` bool mask."""
    c = self.config
    cell_cls = CELLS.get(c.cell)
    bidirectional = self.bidirectional_layers(c.num_layers)
    residual_from = self.residual_from(c)
    lengths = mask.sum(axis=1)
    if c.reverse_source:
      tokens = reverse_padded(tokens, lengths)
    xs = nn.Embed(self.vocab_size, self.embedding_size, name="embed")(tokens)
    finals, backward_first = [], None
    for layer in range(c.num_layers):
      inputs = xs
      xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
      directions = 2 if layer < bidirectional else 1
      size = c.hidden_size // directions
      cells = [
        cell_cls(input_size=xs.shape[-1], hidden_size=size, name=f"layer{layer}_dir{d}")
        for d in range(directions)
      ]
      inputs_by_direction = [xs] if directions == 1 else [xs, reverse_padded(xs, lengths)]
      initial = [cell.initial_carry(tokens.shape[0], xs.dtype) for cell in cells]
      outputs, carries = scan_together(cells, inputs_by_direction, initial, mask)
      if directions == 2:
        outputs[1] = reverse_padded(outputs[1], lengths)
        backward_first = cell_cls.output(carries[1])
      xs = jnp.concatenate(outputs, axis=-1)
      if layer >= residual_from and inputs.shape[-1] == xs.shape[-1]:
        xs = xs + inputs
      finals.append(tuple(jnp.concatenate(parts, axis=-1) for parts in zip(*carries, strict=True)))
    states = reverse_padded(xs, lengths) if c.reverse_source else xs
    if backward_first is None:
      backward_first = cell_cls.output(finals[-1])
    return EncoderOutput(states=states, final=tuple(finals), backward_first=backward_first)


@ENCODERS.register("uni")
class UniEncoder(RNNEncoder):
  """Every layer left to right."""


@ENCODERS.register("bi")
class BiEncoder(RNNEncoder):
  """Every layer reads both ways."""

  @staticmethod
  def bidirectional_layers(num_layers: int) -> int:
    return num_layers


@ENCODERS.register("gnmt")
class GNMTEncoder(RNNEncoder):
  """A bidirectional first layer, then unidirectional layers with residual connections
  from the third layer up, whatever `residual` says."""

  @staticmethod
  def bidirectional_layers(num_layers: int) -> int:
    del num_layers
    return 1

  @staticmethod
  def residual_from(config: EncoderConfig) -> int:
    del config
    return 2
