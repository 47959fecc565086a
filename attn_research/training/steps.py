"""Loss and the pure train / eval step functions (compiled by the trainer)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


def token_nll(
  logits: jax.Array, targets: jax.Array, mask: jax.Array, label_smoothing: float = 0.0
) -> tuple[jax.Array, jax.Array]:
  """Summed cross-entropy of `[batch, tgt_len]` targets and the token count.

  With `label_smoothing` ε the target distribution is (1 − ε) on the reference token and
  ε spread uniformly over the vocabulary (Szegedy et al. 2016).
  """
  logits = logits.astype(jnp.float32)
  if label_smoothing:
    labels = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1]), label_smoothing)
    nll = optax.softmax_cross_entropy(logits, labels)
  else:
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  weights = mask.astype(jnp.float32)
  return jnp.sum(nll * weights), jnp.sum(weights)


def train_step(
  state: train_state.TrainState,
  batch: dict[str, jax.Array],
  rng: jax.Array,
  model: nn.Module,
  label_smoothing: float = 0.0,
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimizer step on the mean per-token cross-entropy of the global batch."""
  dropout_rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    logits, _ = model.apply(
      {"params": params},
      batch["src"],
      batch["src_mask"],
      batch["tgt_in"],
      train=True,
      rngs={"dropout": dropout_rng},
    )
    nll, tokens = token_nll(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing)
    return nll / jnp.maximum(tokens, 1.0), (nll, tokens)

  grads, (nll, tokens) = jax.grad(loss_fn, has_aux=True)(state.params)
  metrics = {"nll_sum": nll, "tokens": tokens, "grad_norm": optax.tree.norm(grads)}
  return state.apply_gradients(grads=grads), metrics


def eval_step(
  params, batch: dict[str, jax.Array], model: nn.Module
) -> tuple[dict[str, jax.Array], jax.Array]:
  """Teacher forcing (forced decoding of the reference) over a batch.

  Returns:
    sums over the real tokens (filler rows have empty masks) and, per target position,
    the most attended source position `[batch, tgt_len]` (Luong et al. 2015 §5.4's
    alignments for AER).
  """
  logits, weights = model.apply(
    {"params": params}, batch["src"], batch["src_mask"], batch["tgt_in"]
  )
  nll, tokens = token_nll(logits, batch["tgt_out"], batch["tgt_mask"])
  return {"nll_sum": nll, "tokens": tokens}, jnp.argmax(weights, axis=-1).astype(jnp.int32)
