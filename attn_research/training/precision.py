"""Mixed precision: float32 parameters and optimizer state, computation in `train.dtype`.

Each step casts a copy of the float32 parameters to the computation dtype and runs the
model on it; gradients flow back through the cast into float32. Whatever must stay
float32 is float32 wherever it is computed: attention normalisation (`masked_softmax`),
local-p's centre and Gaussian, the output log-softmax and the loss (`token_nll`),
beam scores.
"""

import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_params(params, dtype: str):
  """The floating leaves of `params` in `DTYPES[dtype]` (float32: `params` itself)."""
  target = DTYPES[dtype]
  if target == jnp.float32:
    return params

  def cast(x):
    return x.astype(target) if jnp.issubdtype(x.dtype, jnp.floating) else x

  return jax.tree.map(cast, params)
