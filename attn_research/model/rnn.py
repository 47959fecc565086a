"""Recurrent cells whose input projection is computed for all time steps at once.

A cell's input-to-hidden product does not depend on the recurrence, so `scan` computes
it for the whole sequence in one matrix product and leaves only the hidden-to-hidden
product inside the time loop. `step` runs one time step (step-by-step decoding) with the
same parameters.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.registry import Registry

CELLS: Registry[type[nn.Module]] = Registry("recurrent cell", "model.encoder.cell")

Carry = tuple[jax.Array, ...]


def reverse_padded(xs: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses each `[batch, time, ...]` sequence within its length, padding left in place.

  Applying it twice is the identity, so it also maps a reversed run's outputs back.
  """
  time = jnp.arange(xs.shape[1])
  index = jnp.where(time[None, :] < lengths[:, None], lengths[:, None] - 1 - time[None, :], time)
  return jnp.take_along_axis(xs, index.reshape(index.shape + (1,) * (xs.ndim - 2)), axis=1)


def _lstm_recur(w_h: jax.Array, carry: Carry, gates_x: jax.Array) -> Carry:
  """The recurrent half of an LSTM step, given the input projection `W_x x + b`."""
  c, h = carry
  i, f, g, o = jnp.split(gates_x + h @ w_h, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return (c, jax.nn.sigmoid(o) * jnp.tanh(c))


@CELLS.register("lstm")
class LSTMCell(nn.Module):
  """LSTM with the gate equations of the lecture notes (seed 004):

    i, f, o = σ(W_x x + W_h h + b),   g = tanh(W_x x + W_h h + b),
    c' = f ⊙ c + i ⊙ g,               h' = o ⊙ tanh(c').

  The forget-gate bias starts at 1 (Jozefowicz et al. 2015; tensorflow/nmt's default).

  Attributes:
    input_size: size of each input vector x.
    hidden_size: size of h and c.
  """

  input_size: int
  hidden_size: int

  def setup(self):
    h = self.hidden_size
    self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, 4 * h))
    self.w_h = self.param("w_h", nn.initializers.orthogonal(), (h, 4 * h))
    self.b = self.param("b", lambda _, shape: jnp.zeros(shape).at[h : 2 * h].set(1.0), (4 * h,))

  def initial_carry(self, batch: int) -> Carry:
    zeros = jnp.zeros((batch, self.hidden_size))
    return (zeros, zeros)

  @staticmethod
  def output(carry: Carry) -> jax.Array:
    """The hidden state h of a carry `(c, h)`."""
    return carry[1]

  def step(self, carry: Carry, x: jax.Array) -> Carry:
    """One time step: `[batch, input_size]` → new carry."""
    return _lstm_recur(self.w_h, carry, x @ self.w_x + self.b)

  def scan(
    self, xs: jax.Array, carry: Carry, mask: jax.Array | None = None
  ) -> tuple[jax.Array, Carry]:
    """Runs over `[batch, time, input_size]`.

    Args:
      xs: inputs.
      carry: initial state.
      mask: `[batch, time]` bool; on False steps the state is carried over unchanged and
        the output is 0, so the final carry is the state after the last real step.

    Returns:
      outputs `[batch, time, hidden_size]` and the final carry.
    """
    w_h = self.w_h
    gates_x = jnp.swapaxes(xs @ self.w_x + self.b, 0, 1)  # one product for all steps
    step_mask = None if mask is None else jnp.swapaxes(mask, 0, 1)[..., None]

    def body(carry, inputs):
      gx, m = inputs
      new = _lstm_recur(w_h, carry, gx)
      if m is not None:
        new = tuple(jnp.where(m, n, o) for n, o in zip(new, carry, strict=True))
        return new, jnp.where(m, new[1], 0.0)
      return new, new[1]

    carry, outputs = jax.lax.scan(body, carry, (gates_x, step_mask))
    return jnp.swapaxes(outputs, 0, 1), carry
