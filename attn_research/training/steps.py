"""Loss and the pure train / eval step functions (compiled by the trainer)."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from attn_research.decoding.ensemble import Ensemble
from attn_research.model import Seq2Seq
from attn_research.training.losses import token_nll
from attn_research.training.precision import compute_params


def gradients(
  params,
  batch: dict[str, jax.Array],
  dropout_rng: jax.Array,
  model: Seq2Seq,
  label_smoothing: float = 0.0,
  dtype: str = "float32",
) -> tuple[Any, tuple[jax.Array, jax.Array]]:
  """Gradient of the mean per-token cross-entropy of the batch, computed in `dtype`
  (`precision.DTYPES`) from float32 `params`, and the summed NLL and token count."""

  def loss_fn(params):
    features, output_matrix, _ = model.apply(
      {"params": compute_params(params, dtype)},
      batch["src"],
      batch["src_mask"],
      batch["tgt_in"],
      train=True,
      rngs={"dropout": dropout_rng},
      method=Seq2Seq.features,
    )
    nll, tokens = token_nll(
      features, output_matrix, batch["tgt_out"], batch["tgt_mask"], label_smoothing
    )
    return nll / jnp.maximum(tokens, 1.0), (nll, tokens)

  return jax.grad(loss_fn, has_aux=True)(params)


def train_step(
  state: train_state.TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  model: Seq2Seq,
  label_smoothing: float = 0.0,
  dtype: str = "float32",
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimizer step on the batch's `gradients`."""
  dropout_rng = jax.random.fold_in(rng, state.step)
  grads, (nll, tokens) = gradients(state.params, batch, dropout_rng, model, label_smoothing, dtype)
  metrics = {"nll_sum": nll, "tokens": tokens, "grad_norm": optax.tree.norm(grads)}
  return state.apply_gradients(grads=grads), metrics


def accumulate_gradients(
  accumulated: dict[str, Any],
  state: train_state.TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  index: jax.Array,
  model: Seq2Seq,
  label_smoothing: float = 0.0,
  dtype: str = "float32",
) -> dict[str, Any]:
  """Adds micro-batch `index` of the step to `accumulated` (`zero_accumulator(params)` to
  start): the gradient of its summed NLL, the NLL and the token count. Summing before
  dividing by the tokens of all micro-batches weighs every token equally, as one large
  batch would."""
  dropout_rng = jax.random.fold_in(jax.random.fold_in(rng, state.step), index)
  grads, (nll, tokens) = gradients(state.params, batch, dropout_rng, model, label_smoothing, dtype)
  weight = jnp.maximum(tokens, 1.0)  # `gradients` divided by it
  return {
    "grads": jax.tree.map(lambda a, g: a + g * weight, accumulated["grads"], grads),
    "nll_sum": accumulated["nll_sum"] + nll,
    "tokens": accumulated["tokens"] + tokens,
  }


def zero_accumulator(params) -> dict[str, Any]:
  """What `accumulate_gradients` starts from."""
  return {
    "grads": jax.tree.map(jnp.zeros_like, params),
    "nll_sum": jnp.zeros((), jnp.float32),
    "tokens": jnp.zeros((), jnp.float32),
  }


def apply_accumulated(
  state: train_state.TrainState, accumulated: dict[str, Any]
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimizer step on the mean per-token gradient of the accumulated micro-batches."""
  grads = jax.tree.map(lambda g: g / jnp.maximum(accumulated["tokens"], 1.0), accumulated["grads"])
  metrics = {
    "nll_sum": accumulated["nll_sum"],
    "tokens": accumulated["tokens"],
    "grad_norm": optax.tree.norm(grads),
  }
  return state.apply_gradients(grads=grads), metrics


def eval_step(
  params, batch: dict[str, jax.Array], model: Seq2Seq | Ensemble, dtype: str = "float32"
) -> tuple[dict[str, jax.Array], jax.Array]:
  """Teacher forcing (forced decoding of the reference) over a batch; an `Ensemble`'s
  (`params`: its members') scores the reference by its members' mean probability.

  Returns:
    sums over the real tokens (filler rows have empty masks): NLL, tokens and the attention
    support (source positions with a nonzero weight) of each; and per target position the
    most attended source position `[batch, tgt_len]` (Luong et al. 2015 §5.4's alignments
    for AER).
  """
  if isinstance(model, Ensemble):
    gold, weights = model.forced_log_probs(
      tuple(compute_params(p, dtype) for p in params),
      batch["src"],
      batch["src_mask"],
      batch["tgt_in"],
      batch["tgt_out"],
    )
    mask = batch["tgt_mask"]
    sums = {
      "nll_sum": -jnp.sum(jnp.where(mask, gold, 0.0)),
      "tokens": jnp.sum(mask, dtype=jnp.float32),
    }
  else:
    features, output_matrix, weights = model.apply(
      {"params": compute_params(params, dtype)},
      batch["src"],
      batch["src_mask"],
      batch["tgt_in"],
      method=Seq2Seq.features,
    )
    nll, tokens = token_nll(features, output_matrix, batch["tgt_out"], batch["tgt_mask"])
    sums = {"nll_sum": nll, "tokens": tokens}
  support = jnp.sum(weights > 0, axis=-1, dtype=jnp.float32)
  sums["support_sum"] = jnp.sum(jnp.where(batch["tgt_mask"], support, 0.0))
  return sums, jnp.argmax(weights, axis=-1).astype(jnp.int32)
