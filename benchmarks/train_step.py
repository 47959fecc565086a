r"""Times one compiled, data-parallel train step of the dates model for each decoder.

  python -m benchmarks.train_step --out=benchmarks/results/train_step_cpu.json

Random tokens in one padded shape (the dates config's batch, a 28-token source bucket,
12-token targets); compile and warm-up steps are excluded; the median of `--repeats`
timed steps is reported. Writes
`{"device": ..., "results": [{"variant": ..., "seconds_per_step": ..., "target_tokens_per_second": ...}]}`.
"""

import functools
import json
import statistics
import time

from absl import app, flags

_OUT = flags.DEFINE_string("out", None, "Where to write the JSON results.")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Timed steps per variant.")
_SRC_LEN = flags.DEFINE_integer("src_len", 28, "Padded source length.")
_LOCAL = flags.DEFINE_enum(
  "local",
  "auto",
  ["auto", "gather", "dense"],
  "How local alignments attend: as the library chooses by source length, or forced to "
  "gather their window / score a masked dense row.",
)

VARIANTS = {
  "luong+feed": {"decoder.type": "luong", "decoder.input_feeding": True},
  "luong+feed local_m": {"decoder.type": "luong", "attention.alignment": "local_m"},
  "luong+feed local_p": {"decoder.type": "luong", "attention.alignment": "local_p"},
  "luong": {"decoder.type": "luong", "decoder.input_feeding": False},
  "none_state": {"decoder.type": "none_state", "decoder.input_feeding": False},
}
SRC_VOCAB, TGT_VOCAB, TGT_LEN = 96, 15, 12


def main(argv: list[str]) -> None:
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax.training import train_state

  from attn_research.attention import alignments
  from attn_research.model import ModelConfig, Seq2Seq
  from attn_research.training import experiment, optimizers, parallel, steps
  from benchmarks.report import write_report
  from experiments.configs import dates

  if _LOCAL.value != "auto":
    gather = _LOCAL.value == "gather"
    alignments.gathers_window = lambda src_len, window: gather
  mesh = parallel.make_mesh()
  results = []
  for name, overrides in VARIANTS.items():
    config = dates.get_config()
    for key, value in overrides.items():
      section, field = key.split(".")
      setattr(config.model[section], field, value)
    experiment.validate(config, mesh.size)  # a misspelt override would add a key
    model = Seq2Seq(
      ModelConfig.from_config(config.model, SRC_VOCAB, TGT_VOCAB, max(config.data.source_buckets))
    )
    batch_size = config.train.batch_size
    rng = np.random.default_rng(0)
    batch = {
      "src": rng.integers(4, SRC_VOCAB, (batch_size, _SRC_LEN.value)).astype(np.int32),
      "src_mask": np.ones((batch_size, _SRC_LEN.value), bool),
      "tgt_in": rng.integers(4, TGT_VOCAB, (batch_size, TGT_LEN)).astype(np.int32),
      "tgt_out": rng.integers(4, TGT_VOCAB, (batch_size, TGT_LEN)).astype(np.int32),
      "tgt_mask": np.ones((batch_size, TGT_LEN), bool),
    }
    batch = parallel.shard_batch(batch, mesh)
    params = model.init(jax.random.key(0), batch["src"], batch["src_mask"], batch["tgt_in"])
    state = train_state.TrainState.create(
      apply_fn=model.apply,
      params=params["params"],
      tx=optimizers.make_optimizer(
        config.train, optimizers.StepPlan(config.train.num_steps, steps_per_epoch=1.0)
      ),
    )
    repl = parallel.replicated(mesh)
    state = jax.device_put(state, repl)
    step = jax.jit(
      functools.partial(steps.train_step, model=model),
      in_shardings=(repl, parallel.batch_sharding(mesh), repl),
      out_shardings=(repl, repl),
      donate_argnums=0,
    )
    key = jax.random.key(1)
    for _ in range(3):  # compile and warm up
      state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(_REPEATS.value):
      start = time.perf_counter()
      state, metrics = step(state, batch, key)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    median = statistics.median(times)
    tokens = float(jnp.sum(batch["tgt_mask"]))
    results.append(
      {
        "variant": name,
        "local": _LOCAL.value,
        "batch_size": batch_size,
        "src_len": _SRC_LEN.value,
        "tgt_len": TGT_LEN,
        "seconds_per_step": median,
        "target_tokens_per_second": tokens / median,
      }
    )
    print(json.dumps(results[-1]))
  write_report(_OUT.value, results)


if __name__ == "__main__":
  app.run(main)
