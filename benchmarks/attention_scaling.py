r"""Times one decoder attention step against the source length.

  python -m benchmarks.attention_scaling --out=benchmarks/results/attention_scaling_cpu.json

For each alignment and source length: a jit-compiled call of the attention layer for one
decoder step (`[batch, hidden]` query over a prepared memory; the per-source `prepare`
runs once per sentence and is not timed), batch 64, hidden 512, window D = 10, every
source position real, the step at the middle of the source. Monotonic alignments run
their test-time (hard) step from that position with r = +4 added to the random energies;
a search costs one block of `LOOKAHEAD` scored positions per block it reads. Compile and warm-up calls are excluded; the median of `--repeats`
timed calls is reported. Writes
`{"device": ..., "results": [{"alignment", "score", "src_len", "seconds_per_step"}, ...]}`.
"""

import functools
import json
import statistics
import time

from absl import app, flags

_OUT = flags.DEFINE_string("out", None, "Where to write the JSON results.")
_REPEATS = flags.DEFINE_integer("repeats", 200, "Timed calls per point.")
_SCORE = flags.DEFINE_string("score", "general", "Score function.")
_ALIGNMENTS = flags.DEFINE_list(
  "alignments", ["global", "local_m", "local_p", "monotonic", "mocha"], "Alignments to time."
)
_LENGTHS = flags.DEFINE_list(
  "src_lens", ["16", "32", "50", "100", "200", "400", "800"], "Source lengths."
)
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size.")
_HIDDEN = flags.DEFINE_integer("hidden", 512, "Query and key size.")
_WINDOW = flags.DEFINE_integer("window", 10, "D of local alignments.")
HARD_ENERGY_BIAS = 4.0  # monotonic energies' r: pushes random energies to fire early


def main(argv: list[str]) -> None:
  del argv
  import jax
  import jax.numpy as jnp

  from attn_research.attention import Attention, AttentionConfig, AttentionState
  from benchmarks.report import write_report

  batch, hidden = _BATCH.value, _HIDDEN.value
  results = []
  for alignment in _ALIGNMENTS.value:
    for src_len in map(int, _LENGTHS.value):
      config = AttentionConfig(
        _SCORE.value,
        alignment,
        window=_WINDOW.value,
        max_source_length=src_len,
        energy_bias=HARD_ENERGY_BIAS,
      )
      layer = Attention(config, query_size=hidden)
      keys = jax.random.split(jax.random.key(src_len), 3)
      query = jax.random.normal(keys[0], (batch, hidden))
      values = jax.random.normal(keys[1], (batch, src_len, hidden))
      mask = jnp.ones((batch, src_len), bool)
      position = jnp.full((batch,), src_len // 2, jnp.int32)
      params = layer.init(
        keys[2],
        query,
        values,
        mask,
        position,
        method=lambda m, q, v, k, p: m(q, m.prepare(v, k), p),
      )
      memory = jax.jit(functools.partial(layer.apply, method=Attention.prepare))(
        params, values, mask
      )
      state = AttentionState(position=position) if config.monotonic else None
      step = jax.jit(layer.apply)
      for _ in range(5):
        jax.block_until_ready(step(params, query, memory, position, state))
      times = []
      for _ in range(_REPEATS.value):
        start = time.perf_counter()
        jax.block_until_ready(step(params, query, memory, position, state))
        times.append(time.perf_counter() - start)
      results.append(
        {
          "alignment": alignment,
          "score": _SCORE.value,
          "src_len": src_len,
          "seconds_per_step": statistics.median(times),
        }
      )
      print(json.dumps(results[-1]))
  write_report(_OUT.value, results, batch=batch, hidden=hidden, window=_WINDOW.value)


if __name__ == "__main__":
  app.run(main)
