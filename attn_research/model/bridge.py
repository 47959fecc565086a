"""Bridges: the decoder's initial state from the encoder's (`model.bridge`)."""

import flax.linen as nn
import jax.numpy as jnp

from attn_research.errors import ConfigError
from attn_research.model.encoder import EncoderOutput
from attn_research.model.rnn import CELLS, Carry, zero_carry
from attn_research.registry import Registry

BRIDGES: Registry[type[nn.Module]] = Registry("bridge", "model.bridge")


class Bridge(nn.Module):
  """Attributes:
  num_layers: decoder layers.
  hidden_size: decoder state size.
  cell: decoder cell name (fixes the carry structure).
  """

  num_layers: int
  hidden_size: int
  cell: str

  @staticmethod
  def validate(encoder_layers: int, decoder_layers: int) -> None:
    """Raises a one-line `ConfigError` when the bridge cannot start `decoder_layers`
    layers from an encoder of `encoder_layers`."""
    del encoder_layers, decoder_layers


@BRIDGES.register("zero")
class ZeroBridge(Bridge):
  """Every decoder layer starts from zeros."""

  def __call__(self, encoded: EncoderOutput) -> tuple[Carry, ...]:
    batch = encoded.states.shape[0]
    return tuple(
      zero_carry(CELLS.get(self.cell), batch, self.hidden_size, encoded.states.dtype)
      for _ in range(self.num_layers)
    )


@BRIDGES.register("last")
class LastBridge(Bridge):
  """Layer l of the decoder starts from layer l of the encoder after the whole source
  (Luong et al. 2015; Sutskever et al. 2014)."""

  @staticmethod
  def validate(encoder_layers: int, decoder_layers: int) -> None:
    if encoder_layers != decoder_layers:
      raise ConfigError(
        f"model.bridge=last copies encoder states layer by layer, so the decoder needs as "
        f"many layers: encoder {encoder_layers}, decoder {decoder_layers}. Set "
        "model.decoder.num_layers equal to model.encoder.num_layers, or use "
        "model.bridge=dense or zero."
      )

  def __call__(self, encoded: EncoderOutput) -> tuple[Carry, ...]:
    return encoded.final


@BRIDGES.register("dense")
class DenseBridge(Bridge):
  """Bahdanau et al. 2015 (appendix A.2.2): s_0 = tanh(W_s ←h_1), from the backward
  encoder's state at the first source word; one W per decoder layer and carry part."""

  @nn.compact
  def __call__(self, encoded: EncoderOutput) -> tuple[Carry, ...]:
    parts = CELLS.get(self.cell).num_carries
    return tuple(
      tuple(
        jnp.tanh(nn.Dense(self.hidden_size, name=f"layer{layer}_part{p}")(encoded.backward_first))
        for p in range(parts)
      )
      for layer in range(self.num_layers)
    )
