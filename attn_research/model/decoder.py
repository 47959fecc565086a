"""Target decoders.

Every decoder offers the same methods:
  * `prepare(encoded, src_mask, carries)` → (memory, initial state), once per source
    batch (`carries` come from the bridge);
  * `step(memory, state, tokens)` → (state, logits, weights) for one target position,
    used by greedy and beam search;
  * `features(memory, state, tokens)` → (the output layer's inputs, weights) for a whole
    target sequence under teacher forcing, and `output_matrix()`, W_s: the training loss
    multiplies the two once over all positions, outside the time loop;
  * `__call__(memory, state, tokens)` → (logits, weights), equal to running `step`.

Which decoder state is the attention query is a property of the decoder, independent of
the score function: `luong` attends from the current top state h_t, `bahdanau` from the
previous state s_{t−1}, `gnmt` from the bottom layer's previous output.
"""

import dataclasses

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from attn_research.attention import Attention, AttentionConfig, AttentionState, Memory
from attn_research.config.fields import POSITIVE, Bool, Choice, Int, field
from attn_research.errors import ConfigError
from attn_research.model.encoder import EncoderConfig, EncoderOutput
from attn_research.model.hoisted_scan import hoisted_scan
from attn_research.model.rnn import CELLS, Carry
from attn_research.registry import Registry

DECODERS: Registry[type["RecurrentDecoder"]] = Registry("decoder", "model.decoder.type")


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """`model.decoder`: the decoder's kind and options.

  The decoder has no cell or size keys of its own: it runs `model.encoder.cell` cells of
  `model.encoder.hidden_size` units, so its states, the attention query and the encoder's
  outputs (the keys) all have the encoder's hidden size.
  """

  type: str = field(
    Choice(names=DECODERS), "luong", "luong | bahdanau | gnmt | none_state | none_input"
  )
  num_layers: int = field(POSITIVE, 1, "stacked recurrent layers")
  input_feeding: bool = field(
    Bool(), True, "luong: concatenate h̃_{t−1} to the next input (Luong §3.3)"
  )
  tfnmt_compat: bool = field(Bool(), False, "luong: tensorflow/nmt's W[h; c], no tanh, no bias")
  deep_output: bool = field(Bool(), True, "bahdanau: maxout deep output (appendix A.2.2)")
  maxout_size: int = field(
    Int(low=0, note="0: hidden_size // 2"), 0, "bahdanau: maxout units; 0 = hidden_size // 2"
  )
  tie_embeddings: bool = field(
    Bool(), False, "output layer = target embedding matrix (Press & Wolf 2017)"
  )

  def validate(self, encoder: EncoderConfig, embedding_size: int) -> None:
    """Raises a one-line `ConfigError` for a decoder that cannot be built on `encoder`."""
    size = DECODERS.get(self.type).output_input_size(self, encoder.hidden_size)
    if self.tie_embeddings and size != embedding_size:
      raise ConfigError(
        f"model.decoder.tie_embeddings needs the output layer's input size ({size}: "
        f"model.encoder.hidden_size, or bahdanau's maxout units) to equal "
        f"model.embedding_size ({embedding_size}); set model.embedding_size={size} or "
        "model.decoder.tie_embeddings=False."
      )


@flax.struct.dataclass
class DecoderState:
  """Attributes:
  carries: one recurrent carry per decoder layer.
  feed: `[batch, hidden]` what a decoder carries between steps besides its cells: h̃_{t−1}
    (luong with input feeding), the bottom layer's previous output (gnmt), the encoder
    summary (none_input); zeros otherwise.
  position: `[batch]` int32, the 0-based target step about to be predicted.
  attention: what the attention carries between steps (a coverage vector, a monotonic
    alignment's α_{t−1} or position), or None; beam search reorders it with the rest of
    the state.
  """

  carries: tuple[Carry, ...]
  feed: jax.Array
  position: jax.Array
  attention: AttentionState | None = None


def logits(features: jax.Array, matrix: jax.Array) -> jax.Array:
  """`[..., input_size]` × W_s `[input_size, vocab]` → float32 `[..., vocab]` logits,
  whatever the computation dtype (the softmax over them is float32)."""
  return jnp.dot(features, matrix, preferred_element_type=jnp.float32)


class OutputLayer(nn.Module):
  """W_s of `softmax(W_s x)`: a `[input_size, vocab]` kernel, used as one matrix by the
  training loss (over all target positions at once) and by decoding.

  Attributes:
    input_size: size of x.
    vocab_size: target vocabulary size.
  """

  input_size: int
  vocab_size: int

  def setup(self):
    shape = (self.input_size, self.vocab_size)
    self.kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)


class RecurrentDecoder(nn.Module):
  """What the decoders share: target embedding, stacked cells, dropout, output layer.

  A decoder defines `step_outputs`, one recurrent step that returns what its output layer
  reads, and optionally `readout`, what it computes from those outputs without recurrence
  (Bahdanau's deep output). Teacher forcing runs only the recurrent part in the time loop;
  the readout, the output layer and the loss run once over all target positions after it.

  Attributes:
    config: the decoder section; this class reads `num_layers` and `tie_embeddings`, each
      decoder its own options.
    vocab_size: target vocabulary size.
    embedding_size: target embedding size.
    cell: name in `CELLS` (`model.encoder.cell`).
    hidden_size: decoder state size (`model.encoder.hidden_size`).
    dropout: dropout rate on every layer's input and on the output layer's input.
  """

  config: DecoderConfig
  vocab_size: int
  embedding_size: int
  cell: str
  hidden_size: int
  dropout: float

  attentional = False
  feed_input = False  # whether `state.feed` joins every step's bottom input

  def layer_input_size(self, layer: int) -> int:
    extra = self.hidden_size if self.feed_input else 0
    return self.embedding_size + extra if layer == 0 else self.hidden_size

  @staticmethod
  def output_input_size(config: DecoderConfig, hidden_size: int) -> int:
    """Size of what `W_s` projects to the vocabulary."""
    del config
    return hidden_size

  def setup(self):
    cell_cls = CELLS.get(self.cell)
    self.embed = nn.Embed(self.vocab_size, self.embedding_size, name="embed")
    self.cells = [
      cell_cls(
        input_size=self.layer_input_size(layer), hidden_size=self.hidden_size, name=f"layer{layer}"
      )
      for layer in range(self.config.num_layers)
    ]
    self.drop = nn.Dropout(self.dropout)
    if not self.config.tie_embeddings:
      size = self.output_input_size(self.config, self.hidden_size)
      self.w_s = OutputLayer(size, self.vocab_size, name="w_s")

  def output_matrix(self) -> jax.Array:
    """`[output_input_size, vocab]` W_s: the embedding matrix transposed when tied."""
    return self.embed.embedding.T if self.config.tie_embeddings else self.w_s.kernel

  def output_inputs(self, features: jax.Array, train: bool) -> jax.Array:
    """What `W_s` multiplies: `readout` features with dropout when training."""
    return self.drop(features, deterministic=not train)

  def initial_feed(self, encoded: EncoderOutput, carries) -> jax.Array:
    return jnp.zeros((encoded.states.shape[0], self.hidden_size), encoded.states.dtype)

  def memory(self, states: jax.Array, src_mask: jax.Array) -> Memory:
    """`[batch, src_len, hidden]` encoder states as the decoder reads them."""
    return Memory(values=states, keys=states, mask=src_mask)

  def prepare(
    self,
    encoded: EncoderOutput,
    src_mask: jax.Array,
    carries: tuple[Carry, ...],
    hard: bool = False,
  ) -> tuple[Memory, DecoderState]:
    """`hard`: monotonic alignments run their hard (test-time) process."""
    memory = self.memory(encoded.states, src_mask)
    state = DecoderState(
      carries=carries,
      feed=self.initial_feed(encoded, carries),
      position=jnp.zeros((src_mask.shape[0],), jnp.int32),
      attention=self.initial_attention(memory, hard),
    )
    return memory, state

  def initial_attention(self, memory: Memory, hard: bool) -> AttentionState | None:
    del memory, hard
    return None

  def stack_step(self, carries, x, train, context=None, residual_from=None):
    """One step through the stacked cells; `context` joins every layer's input after the
    first (gnmt); residual connections from layer `residual_from` on."""
    new = []
    for layer, (cell, carry) in enumerate(zip(self.cells, carries, strict=True)):
      inputs = x
      if context is not None and layer > 0:
        x = jnp.concatenate([x, context], axis=-1)
      carry = cell.step(carry, self.drop(x, deterministic=not train))
      new.append(carry)
      x = cell.output(carry)
      if residual_from is not None and layer >= residual_from:
        x = x + inputs
    return tuple(new), x

  def stack_scan(self, xs, carries, train):
    """All target steps through the stacked cells (when no step feeds the next's input)."""
    new = []
    for cell, carry in zip(self.cells, carries, strict=True):
      xs, carry = cell.scan(self.drop(xs, deterministic=not train), carry)
      new.append(carry)
    return xs, tuple(new)

  def step_outputs(self, memory: Memory, state: DecoderState, x: jax.Array, train: bool):
    """One recurrent step from the embedded previous tokens `[batch, embedding]`.

    Returns:
      the new state, what `readout` reads (a pytree of `[batch, …]` arrays) and the
      attention weights `[batch, src_len]`.
    """
    raise NotImplementedError

  def readout(self, outputs, x: jax.Array) -> jax.Array:
    """`[…, output_input_size]` features for `W_s` from `step_outputs`' outputs and the
    embedded inputs `x` (any leading shape)."""
    del x
    return outputs

  def step_features(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool):
    """One step from `[batch]` previous tokens → (state, the output layer's inputs
    `[batch, output_input_size]`, attention weights `[batch, src_len]`)."""
    x = self.embed(tokens)
    state, outputs, weights = self.step_outputs(memory, state, x, train)
    return state, self.output_inputs(self.readout(outputs, x), train), weights

  def step(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool = False):
    """One step from `[batch]` previous tokens → (state, logits, attention weights)."""
    state, features, weights = self.step_features(memory, state, tokens, train)
    return state, logits(features, self.output_matrix()), weights

  def sampled_features(
    self,
    memory: Memory,
    state: DecoderState,
    tokens: jax.Array,
    keep_gold: jax.Array,
    train: bool,
  ):
    """Scheduled sampling: `features`, except that step t > 0 reads `tokens[:, t]` only
    where `keep_gold[:, t]` (`[batch, tgt_len]` bool), and elsewhere the argmax of step
    t − 1's logits (no gradient flows through that choice). Step by step, since each
    input may depend on the previous output."""
    if self.is_initializing():  # create the parameters the loop reads
      return self.features(memory, state, tokens, train)
    module, variables = self.unbind()
    matrix = module.apply(variables, method="output_matrix")
    keys = jax.random.split(self.make_rng("dropout"), tokens.shape[1]) if train else None

    def step(carry, inputs):
      state, predicted = carry
      gold, keep, key = inputs
      state, features, weights = module.apply(
        variables,
        memory,
        state,
        jnp.where(keep, gold, predicted),
        train,
        rngs=None if key is None else {"dropout": key},
        method="step_features",
      )
      predicted = jnp.argmax(logits(features, matrix), axis=-1).astype(gold.dtype)
      return (state, jax.lax.stop_gradient(predicted)), (features, weights)

    xs = (tokens.T, keep_gold.T, keys)
    _, ys = jax.lax.scan(step, (state, tokens[:, 0]), xs)
    return jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), ys)

  def scan_steps(self, memory: Memory, state: DecoderState, xs: jax.Array, train: bool):
    """Teacher forcing by running `step_outputs` over `[batch, tgt_len, embedding]`, in a
    `hoisted_scan` (the gradients of the step's weights and of its products with the
    encoder states are computed after the loop)."""
    if self.is_initializing():  # create the parameters the loop reads
      self.step_outputs(memory, state, xs[:, 0], train)
    module, variables = self.unbind()
    keys = jax.random.split(self.make_rng("dropout"), xs.shape[1]) if train else None

    def step(consts, state, inputs):
      variables, memory = consts
      x, key = inputs
      state, outputs, weights = module.apply(
        variables,
        memory,
        state,
        x,
        train,
        rngs=None if key is None else {"dropout": key},
        method="step_outputs",
      )
      return state, (outputs, weights)

    _, ys = hoisted_scan(step, (variables, memory), state, (jnp.swapaxes(xs, 0, 1), keys))
    return jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), ys)

  def features(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool):
    """Teacher forcing: `[batch, tgt_len]` inputs → the output layer's inputs
    `[batch, tgt_len, output_input_size]` (dropout applied when training) and attention
    weights `[…, src_len]` (zeros for decoders without attention)."""
    xs = self.embed(tokens)
    outputs, weights = self.recurrent_outputs(memory, state, xs, train)
    return self.output_inputs(self.readout(outputs, xs), train), weights

  def recurrent_outputs(self, memory: Memory, state: DecoderState, xs: jax.Array, train: bool):
    """`step_outputs` over all target steps: by default the step-by-step loop."""
    return self.scan_steps(memory, state, xs, train)

  def __call__(self, memory: Memory, state: DecoderState, tokens: jax.Array, train: bool):
    """`[batch, tgt_len]` inputs → `[batch, tgt_len, vocab]` logits and `[…, src_len]`
    attention weights (zeros for decoders without attention)."""
    features, weights = self.features(memory, state, tokens, train)
    return logits(features, self.output_matrix()), weights


class AttentionalDecoder(RecurrentDecoder):
  """A decoder that attends over the encoder states at every step.

  Attributes:
    attention_config: the attention section; the query is a decoder state, so it has
      `hidden_size` like the keys.
  """

  attention_config: AttentionConfig

  attentional = True

  def setup(self):
    super().setup()
    self.attention = Attention(self.attention_config, self.hidden_size, name="attention")

  def memory(self, states: jax.Array, src_mask: jax.Array) -> Memory:
    return self.attention.prepare(states, src_mask)

  def initial_attention(self, memory: Memory, hard: bool) -> AttentionState | None:
    return self.attention.initial_state(memory, hard)


@DECODERS.register("luong")
class LuongDecoder(AttentionalDecoder):
  """Luong et al. 2015: attention from the current top-layer state h_t.

    c_t, a_t = attend(h_t, h̄),   h̃_t = tanh(W_c [c_t; h_t]),   p(y_t) = softmax(W_s h̃_t).

  With input feeding, h̃_{t−1} joins the step's input and teacher forcing runs step by
  step; without it, the recurrent pass runs over all target steps first and attention is
  one batched operation (step by step under coverage, whose C_t feeds the next step's
  score; a monotonic alignment runs its own loop over the steps). `tfnmt_compat` uses tensorflow/nmt's `W [h_t; c_t]` instead.
  """

  @property
  def feed_input(self) -> bool:
    return self.config.input_feeding

  def setup(self):
    super().setup()
    self.w_c = nn.Dense(self.hidden_size, use_bias=False, name="w_c")

  def _attend(self, memory: Memory, h: jax.Array, positions: jax.Array, state, train: bool):
    context, weights, state = self.attention(h, memory, positions, state, train)
    if self.config.tfnmt_compat:
      h_tilde = self.w_c(jnp.concatenate([h, context], axis=-1))
    else:
      h_tilde = jnp.tanh(self.w_c(jnp.concatenate([context, h], axis=-1)))
    return h_tilde, weights, state

  def step_outputs(self, memory, state, x, train):
    if self.config.input_feeding:
      x = jnp.concatenate([x, state.feed], axis=-1)
    carries, h = self.stack_step(state.carries, x, train)
    h_tilde, weights, attention = self._attend(memory, h, state.position, state.attention, train)
    return DecoderState(carries, h_tilde, state.position + 1, attention), h_tilde, weights

  def recurrent_outputs(self, memory, state, xs, train):
    if self.config.input_feeding or self.attention_config.covered:
      return self.scan_steps(memory, state, xs, train)
    hs, _ = self.stack_scan(xs, state.carries, train)
    positions = state.position[:, None] + jnp.arange(xs.shape[1])
    h_tilde, weights, _ = self._attend(memory, hs, positions, state.attention, train)
    return h_tilde, weights


@DECODERS.register("bahdanau")
class BahdanauDecoder(AttentionalDecoder):
  """Bahdanau et al. 2015 (RNNsearch): attention from the previous state s_{t−1}.

    c_t, a_t = attend(s_{t−1}, h̄),   s_t = cell(s_{t−1}, [E y_{t−1}; c_t]),

  so the context enters every gate of the step (the paper's C, C_z, C_r). The output is
  the deep-output maxout layer of appendix A.2.2,
    t̃_t = U_o s_{t−1} + V_o E y_{t−1} + C_o c_t,  t_t = max-pool of pairs of t̃_t,
    p(y_t) = softmax(W_o t_t),
  or softmax(W_s s_t) without it. With several layers the top state is the query and the
  context joins the bottom layer's input. The deep output needs no recurrence, so the
  time loop returns (s_{t−1}, c_t) and t_t is computed for all steps after it.
  """

  feed_input = True  # the context joins the bottom input (sized like the hidden state)

  @staticmethod
  def maxout_units(config: DecoderConfig, hidden_size: int) -> int:
    return config.maxout_size or hidden_size // 2

  @staticmethod
  def output_input_size(config: DecoderConfig, hidden_size: int) -> int:
    if config.deep_output:
      return BahdanauDecoder.maxout_units(config, hidden_size)
    return hidden_size

  def setup(self):
    super().setup()
    if self.config.deep_output:
      units = self.maxout_units(self.config, self.hidden_size)
      self.t_tilde = nn.Dense(2 * units, use_bias=False, name="deep_output")

  def step_outputs(self, memory, state, x, train):
    s_prev = CELLS.get(self.cell).output(state.carries[-1])
    context, weights, attention = self.attention(
      s_prev, memory, state.position, state.attention, train
    )
    carries, s_t = self.stack_step(state.carries, jnp.concatenate([x, context], -1), train)
    outputs = (s_prev, context) if self.config.deep_output else s_t
    return DecoderState(carries, state.feed, state.position + 1, attention), outputs, weights

  def readout(self, outputs, x):
    if not self.config.deep_output:
      return outputs
    s_prev, context = outputs
    t_tilde = self.t_tilde(jnp.concatenate([s_prev, x, context], axis=-1))
    units = self.maxout_units(self.config, self.hidden_size)
    return jnp.max(t_tilde.reshape(*t_tilde.shape[:-1], units, 2), axis=-1)


@DECODERS.register("gnmt")
class GNMTDecoder(AttentionalDecoder):
  """Wu et al. 2016 §3: the bottom layer's output from the previous step is the query;
  the context joins the input of every layer; residual connections from the third layer.

    c_t, a_t = attend(h¹_{t−1}, h̄),   h¹_t = cell¹([E y_{t−1}; c_t]),
    hˡ_t = cellˡ([hˡ⁻¹_t; c_t]) (+ hˡ⁻¹_t for l ≥ 3),   p(y_t) = softmax(W_s h^L_t).
  """

  feed_input = True

  def layer_input_size(self, layer: int) -> int:
    return (self.embedding_size if layer == 0 else self.hidden_size) + self.hidden_size

  def initial_feed(self, encoded, carries):
    return CELLS.get(self.cell).output(carries[0])

  def step_outputs(self, memory, state, x, train):
    context, weights, attention = self.attention(
      state.feed, memory, state.position, state.attention, train
    )
    x = jnp.concatenate([x, context], axis=-1)
    carries, h = self.stack_step(state.carries, x, train, context=context, residual_from=2)
    bottom = CELLS.get(self.cell).output(carries[0])
    return DecoderState(carries, bottom, state.position + 1, attention), h, weights


@DECODERS.register("none_state")
class NoneStateDecoder(RecurrentDecoder):
  """Plain seq2seq (Sutskever et al. 2014; the seeds' fixed-vector bottleneck): the
  decoder sees the source only through its initial state. p(y_t) = softmax(W_s h_t).
  Weights are zeros so that every decoder has the same interface."""

  def step_outputs(self, memory, state, x, train):
    if self.feed_input:
      x = jnp.concatenate([x, state.feed], axis=-1)
    carries, h = self.stack_step(state.carries, x, train)
    weights = jnp.zeros(memory.mask.shape, h.dtype)
    return DecoderState(carries, state.feed, state.position + 1), h, weights

  def recurrent_outputs(self, memory, state, xs, train):
    if self.feed_input:
      feed = jnp.broadcast_to(state.feed[:, None], xs.shape[:2] + state.feed.shape[-1:])
      xs = jnp.concatenate([xs, feed], axis=-1)
    hs, _ = self.stack_scan(xs, state.carries, train)
    return hs, jnp.zeros(xs.shape[:2] + memory.mask.shape[1:], hs.dtype)


@DECODERS.register("none_input")
class NoneInputDecoder(NoneStateDecoder):
  """No attention; the encoder's final top-layer state joins every decoder input (the
  textbook's "peeky" decoder, Britz et al. 2017's None-Input)."""

  feed_input = True

  def initial_feed(self, encoded, carries):
    return CELLS.get(self.cell).output(encoded.final[-1])
