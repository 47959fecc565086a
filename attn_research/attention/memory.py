"""What the decoder attends to: encoder states plus their per-source precomputation."""

import flax.struct
import jax


@flax.struct.dataclass
class Memory:
  """Encoder states prepared for attention, computed once per source sentence.

  Attributes:
    values: `[batch, src_len, hidden]` encoder states h̄_s (the context is their
      weighted sum).
    keys: whatever the score function precomputed from the states (e.g. `W_a h̄_s`).
    mask: `[batch, src_len]` bool, True on real source positions.
    coverage: what the coverage model precomputed from the states (`tu_linguistic`'s
      fertilities, `tu_nn`'s input projection), or None.
    chunk_keys: what MoChA's chunk score precomputed from the states, or None.
  """

  values: jax.Array
  keys: jax.Array
  mask: jax.Array
  coverage: jax.Array | None = None
  chunk_keys: jax.Array | None = None
