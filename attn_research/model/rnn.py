"""Recurrent cells whose input projection is computed for all time steps at once.

A cell's input-to-hidden product does not depend on the recurrence, so `scan` computes
it for the whole sequence in one matrix product and leaves only the hidden-to-hidden
product inside the time loop. `step` runs one time step (step-by-step decoding) with the
same parameters.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn_research.registry import Registry

CELLS: Registry[type["Cell"]] = Registry("recurrent cell", "model.encoder.cell")

Carry = tuple[jax.Array, ...]


def reverse_padded(xs: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses each `[batch, time, ...]` sequence within its length, padding left in place.

  Applying it twice is the identity, so it also maps a reversed run's outputs back.
  """
  time = jnp.arange(xs.shape[1])
  index = jnp.where(time[None, :] < lengths[:, None], lengths[:, None] - 1 - time[None, :], time)
  return jnp.take_along_axis(xs, index.reshape(index.shape + (1,) * (xs.ndim - 2)), axis=1)


class Cell(nn.Module):
  """What every cell offers: a carry (tuple of `[batch, hidden]` arrays, h last),
  `step` for one time step and `scan` for a sequence with the input projection of all
  steps in one product.

  Attributes:
    input_size: size of each input vector x.
    hidden_size: size of h.
  """

  input_size: int
  hidden_size: int

  num_carries = 1

  def initial_carry(self, batch: int) -> Carry:
    return zero_carry(type(self), batch, self.hidden_size)

  @staticmethod
  def output(carry: Carry) -> jax.Array:
    """The hidden state h of a carry."""
    return carry[-1]

  def project(self, x: jax.Array) -> jax.Array:
    """The input-to-hidden half of a step (no recurrence): `[..., input_size]`."""
    raise NotImplementedError

  def recur(self, carry: Carry, projected: jax.Array) -> Carry:
    """The recurrent half of a step, given `project(x)`."""
    return self.recurrence()(carry, projected)

  def step(self, carry: Carry, x: jax.Array) -> Carry:
    """One time step: `[batch, input_size]` → new carry."""
    return self.recur(carry, self.project(x))

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
    recur = self.recurrence()
    projected = jnp.swapaxes(self.project(xs), 0, 1)  # one product for all steps
    step_mask = None if mask is None else jnp.swapaxes(mask, 0, 1)[..., None]

    def body(carry, inputs):
      px, m = inputs
      new = recur(carry, px)
      if m is not None:
        new = tuple(jnp.where(m, n, o) for n, o in zip(new, carry, strict=True))
        return new, jnp.where(m, new[-1], 0.0)
      return new, new[-1]

    carry, outputs = jax.lax.scan(body, carry, (projected, step_mask))
    return jnp.swapaxes(outputs, 0, 1), carry

  def recurrence(self):
    """`recur` as a pure function of (carry, projected), for use inside `lax.scan`."""
    raise NotImplementedError


def zero_carry(cell_cls: type[Cell], batch: int, hidden_size: int) -> Carry:
  zeros = jnp.zeros((batch, hidden_size))
  return (zeros,) * cell_cls.num_carries


def _lstm_recur(w_h: jax.Array, carry: Carry, gates_x: jax.Array) -> Carry:
  """The recurrent half of an LSTM step, given the input projection `W_x x + b`."""
  c, h = carry
  i, f, g, o = jnp.split(gates_x + h @ w_h, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return (c, jax.nn.sigmoid(o) * jnp.tanh(c))


@CELLS.register("lstm")
class LSTMCell(Cell):
  """LSTM with the gate equations of the lecture notes (seed 004):

    i, f, o = σ(W_x x + W_h h + b),   g = tanh(W_x x + W_h h + b),
    c' = f ⊙ c + i ⊙ g,               h' = o ⊙ tanh(c').

  The forget-gate bias starts at 1 (Jozefowicz et al. 2015; tensorflow/nmt's default).

  The carry is (c, h).
  """

  num_carries = 2

  def setup(self):
    h = self.hidden_size
    self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, 4 * h))
    self.w_h = self.param("w_h", nn.initializers.orthogonal(), (h, 4 * h))
    self.b = self.param("b", lambda _, shape: jnp.zeros(shape).at[h : 2 * h].set(1.0), (4 * h,))

  def project(self, x):
    return x @ self.w_x + self.b

  def recurrence(self):
    return functools.partial(_lstm_recur, self.w_h)


def _gru_recur(u_zr: jax.Array, u_h: jax.Array, carry: Carry, projected: jax.Array) -> Carry:
  """The recurrent half of a GRU step, given `[W_z x + b_z, W_r x + b_r, W x + b]`."""
  (h,) = carry
  x_z, x_r, x_h = jnp.split(projected, 3, axis=-1)
  h_z, h_r = jnp.split(h @ u_zr, 2, axis=-1)
  z = jax.nn.sigmoid(x_z + h_z)
  r = jax.nn.sigmoid(x_r + h_r)
  candidate = jnp.tanh(x_h + (r * h) @ u_h)
  return ((1.0 - z) * h + z * candidate,)


@CELLS.register("gru")
class GRUCell(Cell):
  """Gated recurrent unit (Cho et al. 2014), as in Bahdanau et al. 2015 (appendix A):

    z = σ(W_z x + U_z h + b_z),   r = σ(W_r x + U_r h + b_r),
    h̃ = tanh(W x + U (r ⊙ h) + b),   h' = (1 − z) ⊙ h + z ⊙ h̃.

  The carry is (h,).
  """

  def setup(self):
    h = self.hidden_size
    self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, 3 * h))
    self.b = self.param("b", nn.initializers.zeros, (3 * h,))
    self.u_zr = self.param("u_zr", nn.initializers.orthogonal(), (h, 2 * h))
    self.u_h = self.param("u_h", nn.initializers.orthogonal(), (h, h))

  def project(self, x):
    return x @ self.w_x + self.b

  def recurrence(self):
    return functools.partial(_gru_recur, self.u_zr, self.u_h)
