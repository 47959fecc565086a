"""Recurrent cells whose input projection is computed for all time steps at once.

A cell's input-to-hidden product does not depend on the recurrence, so `scan` computes
it for the whole sequence in one matrix product and leaves only the hidden-to-hidden
product inside the time loop. `step` runs one time step (step-by-step decoding) with the
same parameters.

The time loop has a hand-written gradient (`jax.custom_vjp`): autodiff of `lax.scan`
adds every step's `dW_h` into a weight-sized accumulator carried through the reverse
loop; here the reverse loop carries only the `[batch, hidden]` state gradients and each
recurrent weight's gradient is one product over all steps after it. Several cells of one
kind (the two directions of a bidirectional layer) run in one loop, their weights stacked
on a leading `directions` axis.
"""

from collections.abc import Sequence

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

  def initial_carry(self, batch: int, dtype: jnp.dtype = jnp.float32) -> Carry:
    return zero_carry(type(self), batch, self.hidden_size, dtype)

  @staticmethod
  def output(carry: Carry) -> jax.Array:
    """The hidden state h of a carry."""
    return carry[-1]

  def project(self, x: jax.Array) -> jax.Array:
    """The input-to-hidden half of a step (no recurrence): `[..., input_size]`."""
    raise NotImplementedError

  def recurrent_weights(self) -> tuple[jax.Array, ...]:
    """The hidden-to-hidden weights, as `recur` and `loop` take them."""
    raise NotImplementedError

  @staticmethod
  def recur(weights: tuple[jax.Array, ...], carry: Carry, projected: jax.Array) -> Carry:
    """The recurrent half of a step, given `project(x)`."""
    raise NotImplementedError

  @staticmethod
  def loop(weights, projected, carry, mask):
    """`recur` over time with a fast gradient, for `D` stacked cells.

    Args:
      weights: `recurrent_weights()` of each cell stacked: `[D, hidden, ...]` each.
      projected: `[time, D, batch, gates]` inputs `project(x)`.
      carry: `[D, batch, hidden]` initial state arrays.
      mask: `[time, batch, 1]` bool, or None (every step real); on False steps the state
        is carried over and the output is 0.

    Returns:
      outputs `[time, D, batch, hidden]` and the final carry.
    """
    raise NotImplementedError

  def step(self, carry: Carry, x: jax.Array) -> Carry:
    """One time step: `[batch, input_size]` → new carry."""
    return self.recur(self.recurrent_weights(), carry, self.project(x))

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
    (outputs,), (carry,) = scan_together([self], [xs], [carry], mask)
    return outputs, carry


def scan_together(
  cells: Sequence[Cell], xs: Sequence[jax.Array], carries: Sequence[Carry], mask: jax.Array | None
) -> tuple[list[jax.Array], list[Carry]]:
  """Runs cells of one kind and size over their own `[batch, time, input]` inputs in one
  time loop (the directions of a bidirectional layer); see `Cell.scan`."""
  kind = type(cells[0])
  projected = jnp.stack(
    [jnp.swapaxes(c.project(x), 0, 1) for c, x in zip(cells, xs, strict=True)], axis=1
  )
  weights = tuple(jnp.stack(w) for w in zip(*(c.recurrent_weights() for c in cells), strict=True))
  carry = tuple(jnp.stack(parts) for parts in zip(*carries, strict=True))
  step_mask = None if mask is None else jnp.swapaxes(mask, 0, 1)[..., None]
  outputs, carry = kind.loop(weights, projected, carry, step_mask)
  outputs = [jnp.swapaxes(outputs[:, d], 0, 1) for d in range(len(cells))]
  return outputs, [tuple(part[d] for part in carry) for d in range(len(cells))]


def zero_carry(
  cell_cls: type[Cell], batch: int, hidden_size: int, dtype: jnp.dtype = jnp.float32
) -> Carry:
  zeros = jnp.zeros((batch, hidden_size), dtype)
  return (zeros,) * cell_cls.num_carries


def _keep(mask, new, old):
  """The new state on real steps, the old one on padding."""
  return new if mask is None else jnp.where(mask, new, old)


def _transpose(w: jax.Array) -> jax.Array:
  return jnp.swapaxes(w, -1, -2)


def _per_step_weight_grad(inputs: jax.Array, grads: jax.Array) -> jax.Array:
  """Σ_t inputs_tᵀ grads_t for `[time, D, batch, in]` × `[time, D, batch, out]`: one
  product over all steps."""
  return jnp.einsum("tdbi,tdbo->dio", inputs, grads)


def _lstm_gates(w_h, c, h, gates_x):
  i, f, g, o = jnp.split(gates_x + h @ w_h, 4, axis=-1)
  return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _lstm_recur(weights, carry: Carry, gates_x: jax.Array) -> Carry:
  (w_h,) = weights
  c, h = carry
  i, f, g, o = _lstm_gates(w_h, c, h, gates_x)
  c = f * c + i * g
  return (c, o * jnp.tanh(c))


def _lstm_loop_fwd(weights, projected, carry, mask):
  (w_h,) = weights

  def body(carry, inputs):
    c, h = carry
    gx, m = inputs
    i, f, g, o = _lstm_gates(w_h, c, h, gx)
    c_new = f * c + i * g
    h_new = o * jnp.tanh(c_new)
    out = h_new if m is None else jnp.where(m, h_new, 0.0)
    new = (_keep(m, c_new, c), _keep(m, h_new, h))
    return new, (out, (i, f, g, o, c, h, c_new))

  final, (outputs, residuals) = jax.lax.scan(body, carry, (projected, mask))
  return (outputs, final), (w_h, residuals, mask)


def _lstm_loop_bwd(saved, cotangents):
  w_h, (i, f, g, o, c_prev, h_prev, c_new), mask = saved
  d_outputs, (dc_final, dh_final) = cotangents

  def body(carry, inputs):
    dc, dh = carry
    i, f, g, o, c_prev, c_new, m, dy = inputs
    dh_step = dh + dy
    if m is not None:
      dh_step, dc_step = jnp.where(m, dh_step, 0.0), jnp.where(m, dc, 0.0)
    else:
      dc_step = dc
    tanh_c = jnp.tanh(c_new)
    dc_total = dc_step + dh_step * o * (1 - tanh_c * tanh_c)
    d_pre = jnp.concatenate(
      [
        dc_total * g * i * (1 - i),
        dc_total * c_prev * f * (1 - f),
        dc_total * i * (1 - g * g),
        dh_step * tanh_c * o * (1 - o),
      ],
      axis=-1,
    )
    dc_prev = dc_total * f
    dh_prev = d_pre @ _transpose(w_h)
    if m is not None:
      dc_prev = dc_prev + jnp.where(m, 0.0, dc)
      dh_prev = dh_prev + jnp.where(m, 0.0, dh)
    return (dc_prev, dh_prev), d_pre

  inputs = (i, f, g, o, c_prev, c_new, mask, d_outputs)
  (dc0, dh0), d_projected = jax.lax.scan(body, (dc_final, dh_final), inputs, reverse=True)
  dw_h = _per_step_weight_grad(h_prev, d_projected)
  return (dw_h,), d_projected, (dc0, dh0), None


@jax.custom_vjp
def _lstm_loop(weights, projected, carry, mask):
  return _lstm_loop_fwd(weights, projected, carry, mask)[0]


_lstm_loop.defvjp(_lstm_loop_fwd, _lstm_loop_bwd)


@CELLS.register("lstm")
class LSTMCell(Cell):
  """LSTM with the gate equations of the lecture notes (seed 004):

    i, f, o = σ(W_x x + W_h h + b),   g = tanh(W_x x + W_h h + b),
    c' = f ⊙ c + i ⊙ g,               h' = o ⊙ tanh(c').

  The forget-gate bias starts at 1 (Jozefowicz et al. 2015; tensorflow/nmt's default).

  The carry is (c, h).
  """

  num_carries = 2
  recur = staticmethod(_lstm_recur)
  loop = staticmethod(_lstm_loop)

  def setup(self):
    h = self.hidden_size
    self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, 4 * h))
    self.w_h = self.param("w_h", nn.initializers.orthogonal(), (h, 4 * h))
    self.b = self.param("b", lambda _, shape: jnp.zeros(shape).at[h : 2 * h].set(1.0), (4 * h,))

  def project(self, x):
    return x @ self.w_x + self.b

  def recurrent_weights(self):
    return (self.w_h,)


def _gru_gates(u_zr, u_h, h, projected):
  x_z, x_r, x_h = jnp.split(projected, 3, axis=-1)
  h_z, h_r = jnp.split(h @ u_zr, 2, axis=-1)
  z = jax.nn.sigmoid(x_z + h_z)
  r = jax.nn.sigmoid(x_r + h_r)
  candidate = jnp.tanh(x_h + (r * h) @ u_h)
  return z, r, candidate


def _gru_recur(weights, carry: Carry, projected: jax.Array) -> Carry:
  (h,) = carry
  z, _, candidate = _gru_gates(*weights, h, projected)
  return ((1.0 - z) * h + z * candidate,)


def _gru_loop_fwd(weights, projected, carry, mask):
  u_zr, u_h = weights

  def body(carry, inputs):
    (h,) = carry
    px, m = inputs
    z, r, candidate = _gru_gates(u_zr, u_h, h, px)
    h_new = (1.0 - z) * h + z * candidate
    out = h_new if m is None else jnp.where(m, h_new, 0.0)
    return (_keep(m, h_new, h),), (out, (z, r, candidate, h))

  final, (outputs, residuals) = jax.lax.scan(body, carry, (projected, mask))
  return (outputs, final), (weights, residuals, mask)


def _gru_loop_bwd(saved, cotangents):
  (u_zr, u_h), (z, r, candidate, h_prev), mask = saved
  d_outputs, (dh_final,) = cotangents

  def body(dh, inputs):
    z, r, candidate, h, m, dy = inputs
    dh_step = dh + dy
    if m is not None:
      dh_step = jnp.where(m, dh_step, 0.0)
    d_pre_h = dh_step * z * (1 - candidate * candidate)
    d_rh = d_pre_h @ _transpose(u_h)
    d_pre_z = dh_step * (candidate - h) * z * (1 - z)
    d_pre_r = d_rh * h * r * (1 - r)
    d_zr = jnp.concatenate([d_pre_z, d_pre_r], axis=-1)
    dh_prev = dh_step * (1 - z) + d_rh * r + d_zr @ _transpose(u_zr)
    if m is not None:
      dh_prev = dh_prev + jnp.where(m, 0.0, dh)
    return dh_prev, jnp.concatenate([d_zr, d_pre_h], axis=-1)

  inputs = (z, r, candidate, h_prev, mask, d_outputs)
  dh0, d_projected = jax.lax.scan(body, dh_final, inputs, reverse=True)
  hidden = h_prev.shape[-1]
  du_zr = _per_step_weight_grad(h_prev, d_projected[..., : 2 * hidden])
  du_h = _per_step_weight_grad(r * h_prev, d_projected[..., 2 * hidden :])
  return (du_zr, du_h), d_projected, (dh0,), None


@jax.custom_vjp
def _gru_loop(weights, projected, carry, mask):
  return _gru_loop_fwd(weights, projected, carry, mask)[0]


_gru_loop.defvjp(_gru_loop_fwd, _gru_loop_bwd)


@CELLS.register("gru")
class GRUCell(Cell):
  """Gated recurrent unit (Cho et al. 2014), as in Bahdanau et al. 2015 (appendix A):

    z = σ(W_z x + U_z h + b_z),   r = σ(W_r x + U_r h + b_r),
    h̃ = tanh(W x + U (r ⊙ h) + b),   h' = (1 − z) ⊙ h + z ⊙ h̃.

  The carry is (h,).
  """

  recur = staticmethod(_gru_recur)
  loop = staticmethod(_gru_loop)

  def setup(self):
    h = self.hidden_size
    self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, 3 * h))
    self.b = self.param("b", nn.initializers.zeros, (3 * h,))
    self.u_zr = self.param("u_zr", nn.initializers.orthogonal(), (h, 2 * h))
    self.u_h = self.param("u_h", nn.initializers.orthogonal(), (h, h))

  def project(self, x):
    return x @ self.w_x + self.b

  def recurrent_weights(self):
    return (self.u_zr, self.u_h)
