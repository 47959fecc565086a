"""An ensemble of models searched as one: their step probabilities averaged.

Greedy and beam search reach a model only through `model.apply(variables, …,
method=Seq2Seq.encode)` and `method=Seq2Seq.decode_step`; `Ensemble` answers both for a
tuple of members and their tuple of parameters. Each step's output is the log of the
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

  def apply(self, variables, *args, method):
    members = tuple(zip(self.models, variables["params"], strict=True))
    if method is Seq2Seq.encode:
      outputs = [m.apply({"params": p}, *args, method=method) for m, p in members]
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
