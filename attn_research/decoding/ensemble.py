"""An ensemble of models searched as one: their step probabilities averaged.

Greedy and beam search reach a model only through `model.apply(variables, …,
method=Seq2Seq.encode)` and `method=Seq2Seq.decode_step`; `Ensemble` answers both for a
tuple of members and their tuple of parameters, and `forced_log_probs` gives teacher
forcing's per-token log-probabilities of the same mixture, for its perplexity. Each step's output is the log of the
members' mean probability, log (1/n) Σ_m softmax(z_m), the ensembling of Luong et al.
(2015) and OpenNMT-py (`-model A B`), and the attention is the members' mean. Memories
and decoder states are tuples of the members' own, so the searches' row gathers apply to
each.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from attn_research.model import Seq2Seq


class Ensemble:
  """`Seq2Seq`'s decoding interface over several models of one target vocabulary.

  `variables["params"]` is the tuple of the members' parameters, in `models`' order.
  """

  def __init__(self, models: Sequence[Seq2Seq]):
    if not models:
      raise ValueError("An ensemble needs at least one model.")
    self.models = tuple(models)
    self.config = self.models[0].config

  def apply(self, variables, *args, method, **kwargs):
    members = tuple(zip(self.models, variables["params"], strict=True))
    if method is Seq2Seq.encode:
      outputs = [m.apply({"params": p}, *args, method=method, **kwargs) for m, p in members]
      return tuple(o[0] for o in outputs), tuple(o[1] for o in outputs)
    if method is Seq2Seq.decode_step:
      memories, states, tokens = args
      outputs = [
        m.apply({"params": p}, memory, state, tokens, method=method)
        for (m, p), memory, state in zip(members, memories, states, strict=True)
      ]
      logp = jnp.stack([jax.nn.log_softmax(o[1].astype(jnp.float32)) for o in outputs])
      mean_logp = jax.nn.logsumexp(logp, axis=0) - math.log(len(outputs))
      attention = jnp.mean(jnp.stack([o[2].astype(jnp.float32) for o in outputs]), axis=0)
      return tuple(o[0] for o in outputs), mean_logp, attention
    raise ValueError(f"An ensemble decodes; it has no {getattr(method, '__name__', method)}.")

  def forced_log_probs(
    self, params: tuple, src: jax.Array, src_mask: jax.Array, tgt_in: jax.Array, tgt_out: jax.Array
  ) -> tuple[jax.Array, jax.Array]:
    """Teacher forcing: log (1/n) Σ_m p_m(y_t | y_<t, x) of the reference tokens `tgt_out`
    `[batch, tgt_len]`, and the members' mean attention `[batch, tgt_len, src_len]`."""
    gold, weights = [], []
    for model, p in zip(self.models, params, strict=True):
      logits, w = model.apply({"params": p}, src, src_mask, tgt_in)
      logp = jax.nn.log_softmax(logits.astype(jnp.float32))
      gold.append(jnp.take_along_axis(logp, tgt_out[..., None], axis=-1)[..., 0])
      weights.append(w.astype(jnp.float32))
    mean_logp = jax.nn.logsumexp(jnp.stack(gold), axis=0) - math.log(len(gold))
    return mean_logp, jnp.mean(jnp.stack(weights), axis=0)
