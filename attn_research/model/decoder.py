"""Target decoders: the Luong attentional decoder and the no-attention baseline.

Every decoder offers the same three methods:
  * `prepare(encoded, src_mask)` → (memory, initial state), once per source batch;
  * `step(memory, state, tokens)` → (state, logits, weights) for one target position,
    used by greedy and beam decoding;
  * `__call__(memory, state, tokens)` → (logits, weights) for a whole target sequence
    under teacher forcing, equal to running `step` over it.
"""

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from attn_research.attention import Attention, Memory
from attn_research.errors import ConfigError
from attn_research.model.encoder import EncoderOutput
from attn_research.model.rnn import CELLS, Carry
from attn_research.registry import Registry

DECODERS: Registry[type[nn.Module]] = Registry("decoder", "model.decoder.type")


@flax.struct.dataclass
class DecoderState:
  """Attributes:
  carries: one recurrent carry per decoder layer.
  feed: `[batch, hidden]` previous attentional state h̃_{t−1} (input feeding).
  position: `[batch]` int32, the 0-based target step about to be predicted.
  """

  carries: tuple[Carry, ...]
  feed: jax.Array
  position: jax.Array


class _RecurrentDecoder(nn.Module):
  """What the decoders share: target embedding, stacked cells, output layer.

  Attributes:
    vocab_size: target vocabulary size.
    embedding_size: target embedding size.
    hidden_size: decoder state size (equal to the encoder's output size).
    num_layers: stacked layers; the initial state copies the encoder's final states
      layer by layer (Luong's setup), so the encoder must have as many layers.
    cell: name in `CELLS`.
    dropout: dropout rate on every layer's input and on the output layer's input.
    input_feeding: concatenate h̃_{t−1} to the next step's input (Luong §3.3).
    score: attention score name (attentional decoders only).
    alignment: attention alignment name (attentional decoders only).
    window: D of local alignments.
    attention_size: inner size N of projected scores (0: hidden size).
    attention_init: "paper" or "default" initialisation of the attention parameters.
    max_source_length: source positions the `location` score addresses.
  """

  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell: str
  dropout: float
  input_feeding: bool
  score: str
  alignment: str
  window: int
  attention_size: int
  attention_init: str
  max_source_length: int

  feeds_input = False

  def setup(self):
    cell_cls = CELLS.get(self.cell)
    first_input = self.embedding_size + (self.hidden_size if self.feeds_input else 0)
    self.embed = nn.Embed(self.vocab_size, self.embedding_size, name="embed")
    self.cells = [
      cell_cls(
        input_size=first_input if layer == 0 else self.hidden_size,
        hidden_size=self.hidden_size,
        name=f"layer{layer}",
      )
      for layer in range(self.num_layers)
    ]
    self.drop = nn.Dropout(self.dropout)
    self.w_s = nn.Dense(self.vocab_size, use_bias=False, name="w_s")

  def prepare(self, encoded: EncoderOutput, src_mask: jax.Array) -> tuple[Memory, DecoderState]:
    if len(encoded.final) != self.num_layers:
      raise ConfigError(
        f"The decoder starts from the encoder's final states layer by layer, so it needs as "
        f"many layers: encoder {len(encoded.final)}, decoder {self.num_layers}. Set "
        "model.decoder.num_layers equal to model.encoder.num_layers."
      )
    batch = src_mask.shape[0]
    state = DecoderState(
      carries=encoded.final,
      feed=jnp.zeros((batch, self.hidden_size)),
      position=jnp.zeros((batch,), jnp.int32),
    )
    return self._memory(encoded.states, src_mask), state

  def _memory(self, states: jax.Array, src_mask: jax.Array) -> Memory:
    return Memory(values=states, keys=states, mask=src_mask)

  def _stack_step(self, carries, x, train):
    """One step through the stacked cells: returns new carries and the top output."""
    new = []
    for cell, carry in zip(self.cells, carries, strict=True):
      carry = cell.step(carry, self.drop(x, deterministic=not train))
      new.append(carry)
      x = cell.output(carry)
    return tuple(new), x

  def _stack_scan(self, xs, carries, train):
    """All target steps through the stacked cells (no input feeding needed)."""
    new = []
    for cell, carry in zip(self.cells, carries, strict=True):
      xs, carry = cell.scan(self.drop(xs, deterministic=not train), carry)
      new.append(carry)
    return xs, tuple(new)


@DECODERS.register("luong")
class LuongDecoder(_RecurrentDecoder):
  """Luong et al. 2015: attention on the current top-layer state h_t.

    c_t, a_t = attend(h_t, h̄),   h̃_t = tanh(W_c [c_t; h_t]),   p(y_t) = softmax(W_s h̃_t).

  With input feeding, h̃_{t−1} joins the step's input and the decoder runs step by step;
  without it, the recurrent pass runs first and attention is computed for every target
  step in one batched operation.
  """

  @property
  def feeds_input(self) -> bool:
    return self.input_feeding

  def setup(self):
    super().setup()
    self.attention = Attention(
      score=self.score,
      alignment=self.alignment,
      query_size=self.hidden_size,
      window=self.window,
      size=self.attention_size,
      max_length=self.max_source_length,
      initialization=self.attention_init,
      name="attention",
    )
    self.w_c = nn.Dense(self.hidden_size, use_bias=False, name="w_c")

  def _memory(self, states: jax.Array, src_mask: jax.Array) -> Memory:
    return self.attention.prepare(states, src_mask)

  def _attend(self, memory: Memory, h: jax.Array, positions: jax.Array, train: bool):
    context, weights = self.attention(h, memory, positions)
    h_tilde = jnp.tanh(self.w_c(jnp.concatenate([context, h], axis=-1)))
    logits = self.w_s(self.drop(h_tilde, deterministic=not train))
    return h_tilde, logits, weights

  def step(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool = False):
    """`[batch]` previous tokens → state, `[batch, vocab]` logits, `[batch, src_len]` weights."""
    x = self.embed(tokens)
    if self.input_feeding:
      x = jnp.concatenate([x, state.feed], axis=-1)
    carries, h = self._stack_step(state.carries, x, train)
    h_tilde, logits, weights = self._attend(memory, h, state.position, train)
    new_state = DecoderState(carries=carries, feed=h_tilde, position=state.position + 1)
    return new_state, logits, weights

  def __call__(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool):
    """`[batch, tgt_len]` inputs → `[batch, tgt_len, vocab]` logits and `[…, src_len]` weights."""
    if not self.input_feeding:
      hs, _ = self._stack_scan(self.embed(tokens), state.carries, train)
      positions = state.position[:, None] + jnp.arange(tokens.shape[1])
      _, logits, weights = self._attend(memory, hs, positions, train)
      return logits, weights

    def body(module, state, token):
      state, logits, weights = module.step(memory, state, token, train)
      return state, (logits, weights)

    scan = nn.scan(
      body,
      variable_broadcast="params",
      split_rngs={"params": False, "dropout": True},
      in_axes=1,
      out_axes=1,
    )
    _, (logits, weights) = scan(self, state, tokens)
    return logits, weights


@DECODERS.register("none_state")
class NoneStateDecoder(_RecurrentDecoder):
  """Plain seq2seq (Sutskever et al. 2014; the seeds' fixed-vector bottleneck).

  The decoder starts from the encoder's final states and never looks at the source
  again: p(y_t) = softmax(W_s h_t). Weights are returned as zeros so that every decoder
  has the same interface. `input_feeding` does not apply (there is no h̃ to feed).
  """

  def _logits(self, h: jax.Array, train: bool) -> jax.Array:
    return self.w_s(self.drop(h, deterministic=not train))

  def step(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool = False):
    carries, h = self._stack_step(state.carries, self.embed(tokens), train)
    weights = jnp.zeros(memory.mask.shape, h.dtype)
    new_state = state.replace(carries=carries, position=state.position + 1)
    return new_state, self._logits(h, train), weights

  def __call__(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool):
    hs, _ = self._stack_scan(self.embed(tokens), state.carries, train)
    weights = jnp.zeros(tokens.shape + memory.mask.shape[1:], hs.dtype)
    return self._logits(hs, train), weights
