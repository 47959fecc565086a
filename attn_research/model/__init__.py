"""Encoders, bridges, decoders, recurrent cells and the seq2seq model."""

from attn_research.model.bridge import BRIDGES
from attn_research.model.decoder import DECODERS, DecoderConfig, DecoderState
from attn_research.model.encoder import ENCODERS, EncoderConfig, EncoderOutput
from attn_research.model.rnn import CELLS
from attn_research.model.seq2seq import ModelConfig, Seq2Seq

__all__ = [
  "BRIDGES",
  "CELLS",
  "DECODERS",
  "ENCODERS",
  "DecoderConfig",
  "DecoderState",
  "EncoderConfig",
  "EncoderOutput",
  "ModelConfig",
  "Seq2Seq",
]
