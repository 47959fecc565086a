"""The LSTM and GRU against float64 NumPy implementations of their gate equations (seed
004), and their hand-written loop gradients against autodiff."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.model.rnn import GRUCell, LSTMCell, reverse_padded
from tests.conftest import plain_cell_loop

BATCH, TIME, IN, HID = 3, 6, 5, 4


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _numpy_lstm(xs, mask, w_x, w_h, b):
  h = np.zeros((BATCH, HID))
  c = np.zeros((BATCH, HID))
  outputs = np.zeros((BATCH, TIME, HID))
  for t in range(TIME):
    z = xs[:, t] @ w_x + h @ w_h + b
    i, f, g, o = (z[:, k * HID : (k + 1) * HID] for k in range(4))
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    m = mask[:, t : t + 1]
    c, h = np.where(m, c_new, c), np.where(m, h_new, h)
    outputs[:, t] = np.where(m, h_new, 0.0)
  return outputs, (c, h)


def test_lstm_scan_and_step_match_numpy_with_padding():
  rng = np.random.default_rng(0)
  xs = rng.normal(size=(BATCH, TIME, IN))
  mask = np.arange(TIME)[None] < np.array([6, 2, 4])[:, None]
  cell = LSTMCell(input_size=IN, hidden_size=HID)
  carry0 = (np.zeros((BATCH, HID), np.float32), np.zeros((BATCH, HID), np.float32))
  x32 = xs.astype(np.float32)  # on the host: its slices below compile nothing
  params = jax.jit(functools.partial(cell.init, method=LSTMCell.scan))(
    jax.random.key(0), x32, carry0, mask
  )
  outputs, (c, h) = jax.jit(functools.partial(cell.apply, method=LSTMCell.scan))(
    params, x32, carry0, mask
  )
  p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
  np.testing.assert_allclose(p["b"][HID : 2 * HID], 1.0)  # forget bias starts at 1
  ref_out, (ref_c, ref_h) = _numpy_lstm(xs, mask, p["w_x"], p["w_h"], p["b"])
  np.testing.assert_allclose(outputs, ref_out, atol=1e-5)
  np.testing.assert_allclose(c, ref_c, atol=1e-5)
  np.testing.assert_allclose(h, ref_h, atol=1e-5)

  carry = carry0
  step = jax.jit(functools.partial(cell.apply, method=LSTMCell.step))  # compiled once
  for t in range(TIME):
    carry = step(params, carry, x32[:, t])
    np.testing.assert_allclose(np.asarray(carry[1])[0], ref_out[0, t], atol=1e-5)  # row 0 unpadded


def test_reverse_padded_reverses_within_length_and_is_an_involution():
  xs = jnp.asarray(np.arange(2 * 5, dtype=np.int32).reshape(2, 5))
  lengths = jnp.asarray(np.array([5, 3], np.int32))
  reverse = jax.jit(reverse_padded)
  reversed_ = reverse(xs, lengths)
  np.testing.assert_array_equal(reversed_, [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]])
  np.testing.assert_array_equal(reverse(reversed_, lengths), xs)


def _numpy_gru(xs, mask, w_x, b, u_zr, u_h):
  h = np.zeros((BATCH, HID))
  outputs = np.zeros((BATCH, TIME, HID))
  for t in range(TIME):
    x_z, x_r, x_h = np.split(xs[:, t] @ w_x + b, 3, axis=-1)
    z = _sigmoid(x_z + h @ u_zr[:, :HID])
    r = _sigmoid(x_r + h @ u_zr[:, HID:])
    candidate = np.tanh(x_h + (r * h) @ u_h)
    h_new = (1 - z) * h + z * candidate
    m = mask[:, t : t + 1]
    h = np.where(m, h_new, h)
    outputs[:, t] = np.where(m, h_new, 0.0)
  return outputs, h


def test_gru_scan_and_step_match_numpy_with_padding():
  rng = np.random.default_rng(1)
  xs = rng.normal(size=(BATCH, TIME, IN))
  mask = np.arange(TIME)[None] < np.array([6, 2, 4])[:, None]
  cell = GRUCell(input_size=IN, hidden_size=HID)
  carry0 = (np.zeros((BATCH, HID), np.float32),)
  x32 = xs.astype(np.float32)  # on the host: its slices below compile nothing
  params = jax.jit(functools.partial(cell.init, method=GRUCell.scan))(
    jax.random.key(0), x32, carry0, mask
  )
  outputs, (h,) = jax.jit(functools.partial(cell.apply, method=GRUCell.scan))(
    params, x32, carry0, mask
  )
  p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
  ref_out, ref_h = _numpy_gru(xs, mask, p["w_x"], p["b"], p["u_zr"], p["u_h"])
  np.testing.assert_allclose(outputs, ref_out, atol=1e-5)
  np.testing.assert_allclose(h, ref_h, atol=1e-5)
  carry = carry0
  step = jax.jit(functools.partial(cell.apply, method=GRUCell.step))  # compiled once
  for t in range(TIME):
    carry = step(params, carry, x32[:, t])
    np.testing.assert_allclose(np.asarray(carry[0])[0], ref_out[0, t], atol=1e-5)


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell])
@pytest.mark.parametrize("masked", [True, False])
def test_loop_gradient_equals_autodiff(cell_cls, masked):
  """Two stacked directions, lengths 6, 1 and 4 (or none masked), float64: every input's
  gradient equals autodiff's, for a loss that reads the outputs and the final carry."""
  directions, gates = 2, {LSTMCell: 4, GRUCell: 3}[cell_cls]
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    shapes = {LSTMCell: [(HID, 4 * HID)], GRUCell: [(HID, 2 * HID), (HID, HID)]}[cell_cls]
    weights = tuple(jnp.asarray(rng.normal(size=(directions, *s)) * 0.5) for s in shapes)
    projected = jnp.asarray(rng.normal(size=(TIME, directions, BATCH, gates * HID)))
    carry = tuple(
      jnp.asarray(rng.normal(size=(directions, BATCH, HID))) for _ in range(cell_cls.num_carries)
    )
    lengths = np.array([6, 1, 4])
    mask = jnp.asarray((np.arange(TIME)[:, None] < lengths)[..., None]) if masked else None
    probe_out = jnp.asarray(rng.normal(size=(TIME, directions, BATCH, HID)))
    probe_carry = [jnp.asarray(rng.normal(size=(directions, BATCH, HID))) for _ in carry]

    def loss(loop, weights, projected, carry):
      outputs, final = loop(weights, projected, carry, mask)
      return jnp.sum(outputs * probe_out) + sum(
        jnp.sum(f * p) for f, p in zip(final, probe_carry, strict=True)
      )

    fast_loss = jax.jit(functools.partial(loss, cell_cls.loop))
    reference_loss = jax.jit(functools.partial(loss, functools.partial(plain_cell_loop, cell_cls)))
    fast = jax.jit(jax.grad(fast_loss, argnums=(0, 1, 2)))
    reference = jax.jit(jax.grad(reference_loss, argnums=(0, 1, 2)))
    args = (weights, projected, carry)
    np.testing.assert_allclose(fast_loss(*args), reference_loss(*args))
    for got, want in zip(
      jax.tree.leaves(fast(*args)), jax.tree.leaves(reference(*args)), strict=True
    ):
      np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_loop_gradient_carries_no_weight_accumulator():
  """The reverse loop of the LSTM's gradient carries only `[batch, hidden]` arrays."""
  w_h = jnp.asarray(np.zeros((1, HID, 4 * HID), np.float32))  # no compiled fills
  projected = jnp.asarray(np.zeros((TIME, 1, BATCH, 4 * HID), np.float32))
  carry = (jnp.asarray(np.zeros((1, BATCH, HID), np.float32)),) * 2

  def loss(w_h):
    return jnp.sum(LSTMCell.loop((w_h,), projected, carry, None)[0])

  jaxpr = jax.make_jaxpr(jax.grad(loss))(w_h)
  scans = _scans(jaxpr.jaxpr)
  reverse = [e for e in scans if e.params["reverse"]]
  assert reverse, "the gradient has no reverse loop"
  for eqn in reverse:
    num_carry = eqn.params["num_carry"]
    consts = eqn.params["num_consts"]
    shapes = [v.aval.shape for v in eqn.invars[consts : consts + num_carry]]
    assert all(s == (1, BATCH, HID) for s in shapes), shapes


def _scans(jaxpr):
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "scan":
      found.append(eqn)
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", None)
      if inner is not None:
        found += _scans(getattr(inner, "jaxpr", inner))
  return found
