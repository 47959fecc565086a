"""`hoisted_scan` against `lax.scan`: values and gradients, float64."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from attn_research.model.hoisted_scan import hoisted_scan

B, S, H, T = 3, 4, 5, 6


def _step(consts, carry, x):
  """An input-feeding attention step: every kind of product the decoders have."""
  w, u, bias, keys, mask = consts["w"], consts["u"], consts["bias"], consts["keys"], consts["mask"]
  h, feed, position = carry
  z = jnp.tanh(jnp.concatenate([x, feed], -1) @ w + h @ u + bias)  # weights, bias
  scores = jnp.einsum("bh,bsh->bs", z, keys)  # a batched product with encoder states
  weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
  context = jnp.einsum("bs,bsh->bh", weights, keys)
  feed = jnp.tanh(context + z)
  return (z, feed, position + 1), (feed * 2.0, weights)


def _inputs(rng):
  consts = {
    "w": rng.normal(size=(2 * H, H)) * 0.5,
    "u": rng.normal(size=(H, H)) * 0.5,
    "bias": rng.normal(size=(H,)),
    "keys": rng.normal(size=(B, S, H)),
    "mask": np.arange(S)[None] < np.array([[4], [2], [1]]),
  }
  carry = (rng.normal(size=(B, H)), rng.normal(size=(B, H)), np.zeros((B,), np.int32))
  xs = rng.normal(size=(T, B, H))
  return jax.tree.map(jnp.asarray, (consts, carry, xs))


def test_values_and_gradients_equal_autodiff_of_scan():
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    consts, carry, xs = _inputs(rng)
    probe = jnp.asarray(rng.normal(size=(T, B, H)))

    def loss(scan, consts, carry, xs):
      (h, feed, position), (ys, weights) = scan(consts, carry, xs)
      return jnp.sum(ys * probe) + jnp.sum(h * feed) + jnp.sum(weights**2) + 0.0 * position.sum()

    plain = lambda c, ca, x: jax.lax.scan(lambda a, b: _step(c, a, b), ca, x)  # noqa: E731
    hoisted = lambda c, ca, x: hoisted_scan(_step, c, ca, x)  # noqa: E731
    np.testing.assert_allclose(
      jax.jit(functools.partial(loss, hoisted))(consts, carry, xs),
      jax.jit(functools.partial(loss, plain))(consts, carry, xs),
    )
    differentiable = lambda f: lambda c, h, feed, x: loss(f, c, (h, feed, carry[2]), x)  # noqa: E731
    want = jax.jit(jax.grad(differentiable(plain), argnums=(0, 1, 2, 3), allow_int=True))(
      consts, carry[0], carry[1], xs
    )
    got = jax.jit(jax.grad(differentiable(hoisted), argnums=(0, 1, 2, 3), allow_int=True))(
      consts, carry[0], carry[1], xs
    )
    for name in ("w", "u", "bias", "keys"):
      np.testing.assert_allclose(got[0][name], want[0][name], rtol=1e-10, atol=1e-12)
    for g, w in zip(got[1:], want[1:], strict=True):
      np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_the_reverse_loop_carries_no_weight_sized_accumulator():
  consts, carry, xs = _inputs(np.random.default_rng(1))

  def loss(consts):
    return jnp.sum(hoisted_scan(_step, consts, carry, xs)[1][0])

  jaxpr = jax.make_jaxpr(jax.grad(loss, allow_int=True))(consts)
  shapes = set()
  for eqn in _all_equations(jaxpr.jaxpr):
    if eqn.primitive.name == "scan" and eqn.params["reverse"]:
      first = eqn.params["num_consts"]
      shapes |= {v.aval.shape for v in eqn.invars[first : first + eqn.params["num_carry"]]}
  assert shapes, "no reverse loop"
  assert (2 * H, H) not in shapes and (H, H) not in shapes and (B, S, H) not in shapes, shapes


def _all_equations(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", None)
      if inner is not None:
        yield from _all_equations(getattr(inner, "jaxpr", inner))
