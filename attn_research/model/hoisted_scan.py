"""`lax.scan` whose loop-invariant matrix products get their gradient after the loop.

Autodiff of `lax.scan` adds each step's gradient of every loop-invariant input into an
accumulator carried through the reverse loop: for `x_t @ W`, a `W`-sized read-modify-write
per step, from a product whose inner dimension is only the batch. `hoisted_scan` finds
every matrix product of the step whose one operand is a loop-invariant input (weights,
and the encoder states an attention step reads), and differentiates the loop with that
operand held constant and a zero "probe" added to the product. The reverse loop then
carries only the state gradients; the probes' gradients are the products' output
gradients at every step, and each invariant operand's gradient is one product over all
steps after the loop, `dW = Σ_t x_tᵀ dprobe_t`. Other uses of invariant inputs (biases,
masks) keep autodiff's accumulation.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jex_core

Step = Callable[[Any, Any, Any], tuple[Any, Any]]


def _is_var(v) -> bool:
  return not isinstance(v, jex_core.Literal)


def _find_sites(jaxpr, num_consts: int) -> list[tuple[int, int, int]]:
  """`(equation, side of the step operand, invariant input)` of each top-level
  `dot_general` with exactly one float operand a loop-invariant input."""
  const_index = {v: i for i, v in enumerate(jaxpr.invars[:num_consts])}
  sites = []
  for e, eqn in enumerate(jaxpr.eqns):
    if eqn.primitive.name != "dot_general":
      continue
    invariant = [_is_var(v) and v in const_index for v in eqn.invars]
    if invariant.count(True) != 1:
      continue
    side = invariant.index(True)
    if jnp.issubdtype(eqn.invars[side].aval.dtype, jnp.floating):
      sites.append((e, 1 - side, const_index[eqn.invars[side]]))
  return sites


def _evaluate(jaxpr, jaxpr_consts, args, sites, probes):
  """`jax.core.eval_jaxpr`, with each site's invariant operand held constant and its
  probe added; also returns each site's step operand."""
  env = dict(zip(jaxpr.constvars, jaxpr_consts, strict=True))
  env.update(zip(jaxpr.invars, args, strict=True))
  read = lambda v: env[v] if _is_var(v) else v.val  # noqa: E731
  by_equation = {e: (k, step_side) for k, (e, step_side, _) in enumerate(sites)}
  step_operands = [None] * len(sites)
  for e, eqn in enumerate(jaxpr.eqns):
    values = [read(v) for v in eqn.invars]
    params = eqn.primitive.get_bind_params(eqn.params)
    if e in by_equation:
      k, step_side = by_equation[e]
      values[1 - step_side] = jax.lax.stop_gradient(values[1 - step_side])
      step_operands[k] = values[step_side]
      env[eqn.outvars[0]] = eqn.primitive.bind(*values, **params) + probes[k]
      continue
    out = eqn.primitive.bind(*values, **params)
    if eqn.primitive.multiple_results:
      env.update(zip(eqn.outvars, out, strict=True))
    else:
      env[eqn.outvars[0]] = out
  return [read(v) for v in jaxpr.outvars], step_operands


def _site_gradient(eqn, step_side: int, stacked: jax.Array, invariant, d_out) -> jax.Array:
  """Σ_t of the invariant operand's gradient: the site's product with the step operand
  stacked over time `[time, …]` (time joins its free dimensions) and the probes' output
  gradients `[time, …out]` moved to where time lands in the output."""
  (lhs_c, rhs_c), (lhs_b, rhs_b) = eqn.params["dimension_numbers"]

  def shift(dims):
    return tuple(d + 1 for d in dims)

  if step_side == 0:
    numbers = ((shift(lhs_c), rhs_c), (shift(lhs_b), rhs_b))
    time_axis = len(lhs_b)
  else:
    numbers = ((lhs_c, shift(rhs_c)), (lhs_b, shift(rhs_b)))
    time_axis = len(lhs_b) + invariant.ndim - len(lhs_c) - len(lhs_b)
  params = dict(eqn.params, dimension_numbers=numbers)

  def product(w):
    operands = (stacked, w) if step_side == 0 else (w, stacked)
    return eqn.primitive.bind(*operands, **params)

  out, pull = jax.vjp(product, invariant)  # XLA drops the unused product
  return pull(jnp.moveaxis(d_out, 0, time_axis).astype(out.dtype))[0]


def hoisted_scan(step: Step, consts, carry, xs) -> tuple[Any, Any]:
  """`jax.lax.scan(lambda c, x: step(consts, c, x), carry, xs)` with a faster gradient.

  Args:
    step: `(consts, carry, x) → (carry, y)`; it must reach every differentiated value
      through its arguments (it may not close over traced arrays).
    consts: pytree of loop-invariant arrays.
    carry: initial carry.
    xs: pytree of `[time, …]` arrays.

  Returns:
    the final carry and the stacked `y`s.
  """
  const_leaves, const_tree = jax.tree.flatten(consts)
  carry_leaves, carry_tree = jax.tree.flatten(carry)
  x_leaves, x_tree = jax.tree.flatten(xs)
  num_consts, num_carry = len(const_leaves), len(carry_leaves)
  y_tree = []

  def flat_step(*leaves):
    c = const_tree.unflatten(leaves[:num_consts])
    ca = carry_tree.unflatten(leaves[num_consts : num_consts + num_carry])
    new_carry, y = step(c, ca, x_tree.unflatten(leaves[num_consts + num_carry :]))
    y_leaves, tree = jax.tree.flatten(y)
    y_tree.append(tree)
    return [*jax.tree.leaves(new_carry), *y_leaves]

  x_slices = [jax.ShapeDtypeStruct(x.shape[1:], x.dtype) for x in x_leaves]
  closed = jax.make_jaxpr(flat_step)(*const_leaves, *carry_leaves, *x_slices)
  jaxpr, sites = closed.jaxpr, _find_sites(closed.jaxpr, num_consts)
  length = x_leaves[0].shape[0]
  probe_shapes = [jaxpr.eqns[e].outvars[0].aval for e, _, _ in sites]

  def run(const_leaves, carry_leaves, x_leaves, probes):
    def body(c, inputs):
      x, p = inputs
      outs, operands = _evaluate(jaxpr, closed.consts, [*const_leaves, *c, *x], sites, p)
      return outs[:num_carry], (outs[num_carry:], operands)

    final, (ys, operands) = jax.lax.scan(body, list(carry_leaves), (list(x_leaves), probes))
    return (final, ys), operands

  def zero_probes():
    return [jnp.zeros((length, *a.shape), a.dtype) for a in probe_shapes]

  @jax.custom_vjp
  def loop(const_leaves, carry_leaves, x_leaves):
    return run(const_leaves, carry_leaves, x_leaves, zero_probes())[0]

  def loop_fwd(const_leaves, carry_leaves, x_leaves):
    out, pull, operands = jax.vjp(
      run, const_leaves, carry_leaves, x_leaves, zero_probes(), has_aux=True
    )
    return out, (pull, operands, const_leaves)

  def loop_bwd(saved, cotangents):
    pull, operands, const_leaves = saved
    d_consts, d_carry, d_xs, d_probes = pull(cotangents)
    d_consts = list(d_consts)
    for (e, step_side, c), stacked, d_out in zip(sites, operands, d_probes, strict=True):
      d_consts[c] = d_consts[c] + _site_gradient(
        jaxpr.eqns[e], step_side, stacked, const_leaves[c], d_out
      )
    return d_consts, d_carry, d_xs

  loop.defvjp(loop_fwd, loop_bwd)
  final, ys = loop(const_leaves, carry_leaves, x_leaves)
  return carry_tree.unflatten(final), y_tree[0].unflatten(ys)
