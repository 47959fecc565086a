import functools
import json
import os

import jax
import numpy as np
import optax
import pytest
from flax.training import train_state

from attn_research.training import losses, steps, trainer
from tests.conftest import short_synthetic_config, tiny_seq2seq


def _batch(rng, rows, src_len=6, tgt_len=5, vocab=17):
  lengths = rng.integers(1, tgt_len + 1, rows)
  tgt_mask = np.arange(tgt_len)[None] < lengths[:, None]
  return {  # host arrays: the jitted steps take them, nothing is computed op by op
    "src": rng.integers(4, 23, (rows, src_len)).astype(np.int32),
    "src_mask": np.arange(src_len)[None] < rng.integers(2, src_len + 1, rows)[:, None],
    "tgt_in": rng.integers(4, vocab, (rows, tgt_len)).astype(np.int32),
    "tgt_out": rng.integers(4, vocab, (rows, tgt_len)).astype(np.int32),
    "tgt_mask": tgt_mask,
  }


@pytest.mark.parametrize("coverage", [0.0, 0.5])
def test_accumulated_micro_batches_step_as_their_concatenation(coverage):
  """Two batches with different token counts: every token weighs the same, as in one
  batch, the coverage loss's too."""
  objective = losses.Objective(coverage=coverage)
  model = tiny_seq2seq(
    decoder_input_feeding=True,
    attention_score="additive",
    attention_coverage="see" if coverage else "none",
  )
  rng = np.random.default_rng(0)
  first, second = _batch(rng, 4), _batch(rng, 4)
  both = {k: np.concatenate([first[k], second[k]]) for k in first}

  @jax.jit
  def start(src, src_mask, tgt_in):  # initialisation: one compiled program
    params = model.init(jax.random.key(0), src, src_mask, tgt_in)["params"]
    state = train_state.TrainState.create(
      apply_fn=model.apply,
      params=params,
      tx=optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)),
    )
    return state, steps.zero_accumulator(state.params, objective)

  state, accumulated = start(both["src"], both["src_mask"], both["tgt_in"])
  key = jax.random.key(1)
  whole, whole_metrics = jax.jit(
    functools.partial(steps.train_step, model=model, objective=objective)
  )(state, both, key)
  add = jax.jit(functools.partial(steps.accumulate_gradients, model=model, objective=objective))
  for index, batch in enumerate((first, second)):
    accumulated = add(accumulated, state, batch, key, index)
  parts, parts_metrics = jax.jit(steps.apply_accumulated)(state, accumulated)
  assert (
    float(parts_metrics["tokens"])
    == float(whole_metrics["tokens"])
    == float(both["tgt_mask"].sum())
  )
  assert parts_metrics.keys() == whole_metrics.keys()
  assert ("coverage_sum" in whole_metrics) == bool(coverage)
  for name in whole_metrics:
    np.testing.assert_allclose(parts_metrics[name], whole_metrics[name], rtol=1e-5)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), parts.params, whole.params
  )
  assert int(parts.step) == int(whole.step) == 1


def test_a_run_with_accumulation_counts_every_micro_batch(synthetic_data_dir, tmp_path):
  config = short_synthetic_config(synthetic_data_dir, log_every=10, learning_rate=3e-3)
  config.train.accumulate_steps = 3
  result = trainer.train_and_evaluate(config, str(tmp_path))
  assert result["status"] == "completed"
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f if "train_loss" in line]
  assert [r["step"] for r in records] == [10, 20] and records[1]["train_loss"] < records[0][
    "train_loss"
  ]
  with open(os.path.join(tmp_path, "checkpoints", "20", "progress", "metadata")) as f:
    position = json.load(f)["data"]
  # 3 batches a step: 60 batches, of which an epoch (2,000 pairs, one shape) holds 31.
  assert position == {"epoch": 1, "position": 29}
