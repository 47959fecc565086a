"""Loss and the pure train / eval step functions (compiled by the trainer)."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from attn_research.decoding.ensemble import Ensemble
from attn_research.model import Seq2Seq
from attn_research.training.losses import (
  ATTENTION_TERMS,
  Objective,
  coverage_loss,
  guided_alignment_loss,
  token_nll,
)
from attn_research.training.precision import compute_params

CROSS_ENTROPY = Objective()  # plain per-token cross-entropy


def loss(
  params,
  batch: dict[str, jax.Array],
  dropout_rng: jax.Array,
  model: Seq2Seq,
  objective: Objective = CROSS_ENTROPY,
  dtype: str = "float32",
  step: jax.Array | int = 0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The batch's mean per-token `objective` at optimizer step `step` (0-based), computed
  in `dtype` (`precision.DTYPES`) from float32 `params`, and its sums: NLL, token count
  and each attention term (unweighted, also before a term's start step) that the
  objective has. Under scheduled sampling, the decoder feeds itself at step `step`'s ε."""
  inputs, method = (batch["src"], batch["src_mask"], batch["tgt_in"]), Seq2Seq.features
  if objective.sampling.enabled:  # a run without it draws the same dropout as before
    sampling_rng, dropout_rng = jax.random.split(dropout_rng)
    keep_gold = objective.sampling.keep_gold(sampling_rng, step, batch["tgt_in"].shape)
    inputs, method = (*inputs, keep_gold), Seq2Seq.sampled_features
  features, output_matrix, weights = model.apply(
    {"params": compute_params(params, dtype)},
    *inputs,
    train=True,
    rngs={"dropout": dropout_rng},
    method=method,
  )
  nll, tokens = token_nll(
    features, output_matrix, batch["tgt_out"], batch["tgt_mask"], objective.label_smoothing
  )
  sums = {"nll_sum": nll, "tokens": tokens}
  total = nll
  if objective.coverage:
    sums["coverage_sum"] = coverage_loss(weights, batch["tgt_mask"])
    weight = jnp.where(step >= objective.coverage_start, objective.coverage, 0.0)
    total += weight * sums["coverage_sum"]
  if objective.guided_alignment:
    sums["guided_alignment_sum"] = guided_alignment_loss(
      weights, batch["alignment"], batch["tgt_mask"], objective.guided_alignment_loss
    )
    total += objective.guided_alignment * sums["guided_alignment_sum"]
  return total / jnp.maximum(tokens, 1.0), sums


# Gradient of `loss` with respect to the parameters, and the sums.
gradients = jax.grad(loss, has_aux=True)


def train_step(
  state: train_state.TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  model: Seq2Seq,
  objective: Objective = CROSS_ENTROPY,
  dtype: str = "float32",
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimizer step on the batch's `gradients`."""
  dropout_rng = jax.random.fold_in(rng, state.step)
  grads, sums = gradients(state.params, batch, dropout_rng, model, objective, dtype, state.step)
  return state.apply_gradients(grads=grads), {**sums, "grad_norm": optax.tree.norm(grads)}


def accumulate_gradients(
  accumulated: dict[str, Any],
  state: train_state.TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  index: jax.Array,
  model: Seq2Seq,
  objective: Objective = CROSS_ENTROPY,
  dtype: str = "float32",
) -> dict[str, Any]:
  """Adds micro-batch `index` of the step to `accumulated` (`zero_accumulator` to start):
  the gradient of its summed objective and its sums. Summing before dividing by the
  tokens of all micro-batches weighs every token equally, as one large batch would."""
  dropout_rng = jax.random.fold_in(jax.random.fold_in(rng, state.step), index)
  grads, sums = gradients(state.params, batch, dropout_rng, model, objective, dtype, state.step)
  weight = jnp.maximum(sums["tokens"], 1.0)  # `gradients` divided by it
  return {
    "grads": jax.tree.map(lambda a, g: a + g * weight, accumulated["grads"], grads),
    **{name: accumulated[name] + value for name, value in sums.items()},
  }


def zero_accumulator(params, objective: Objective = CROSS_ENTROPY) -> dict[str, Any]:
  """What `accumulate_gradients` starts from: zero gradients and zero sums."""
  terms = [f"{term}_sum" for term in ATTENTION_TERMS if getattr(objective, term)]
  names = ["nll_sum", "tokens", *terms]
  return {
    "grads": jax.tree.map(jnp.zeros_like, params),
    **{name: jnp.zeros((), jnp.float32) for name in names},
  }


def apply_accumulated(
  state: train_state.TrainState, accumulated: dict[str, Any]
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimizer step on the mean per-token gradient of the accumulated micro-batches."""
  grads = jax.tree.map(lambda g: g / jnp.maximum(accumulated["tokens"], 1.0), accumulated["grads"])
  sums = {name: value for name, value in accumulated.items() if name != "grads"}
  return state.apply_gradients(grads=grads), {**sums, "grad_norm": optax.tree.norm(grads)}


def _links(weights: jax.Array) -> jax.Array:
  """The most attended source position of each target position `[batch, tgt_len]`, −1
  where nothing is attended (an empty source, a stopped monotonic process)."""
  top = jnp.argmax(weights, axis=-1).astype(jnp.int32)
  return jnp.where(jnp.sum(weights, axis=-1) > 0, top, -1)


def eval_step(
  params, batch: dict[str, jax.Array], model: Seq2Seq | Ensemble, dtype: str = "float32"
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """Teacher forcing (forced decoding of the reference) over a batch; an `Ensemble`'s
  (`params`: its members') scores the reference by its members' mean probability.

  Returns:
    sums over the real tokens (filler rows have empty masks): NLL, tokens and the attention
    support (source positions with a nonzero weight) of each; and per target position the
    most attended source position `[batch, tgt_len]` (Luong et al. 2015 §5.4's alignments
    for AER, `_links`): `forced` from the attention the loss is computed with and, for a
    monotonic alignment, `hard` from its test-time process (MoChA's: the most attended
    position of its chunk).
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
  links = {"forced": _links(weights)}
  if isinstance(model, Seq2Seq) and model.config.monotonic:
    _, hard = model.apply(
      {"params": compute_params(params, dtype)},
      batch["src"],
      batch["src_mask"],
      batch["tgt_in"],
      hard=True,
    )
    links["hard"] = _links(hard)
  return sums, links
