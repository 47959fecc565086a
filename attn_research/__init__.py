"""attn_research: attention variants for RNN encoder-decoder (seq2seq) models."""

__version__ = "0.1.0"
