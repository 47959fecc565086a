r"""Synthetic tasks with gold alignments: copy, reverse, sort, swap (default reverse).

  python -m experiments.train --config=experiments/configs/synthetic.py:reverse \
      --workdir=runs/reverse

Word level over the letters a–z; sources of 3–30 letters, and a `test_long` split of
31–45 letters that training never sees. Every split reports AER against the gold
alignments (attentional decoders) and BLEU by source length. Compare the fixed-vector
bottleneck with `--config.model.decoder.type=none_state`.
"""

from typing import Any

import ml_collections

from experiments.configs import base


def get_config(task: str = "reverse") -> ml_collections.ConfigDict:
  config = base.get_config()
  config.dataset.name = f"synthetic/{task}"
  config.dataset.vocab = "word"
  config.data.source_buckets = (10, 20, 30, 45)
  config.data.target_buckets = (11, 21, 31, 46)  # counting </s>
  config.model.embedding_size = 64
  config.model.encoder.hidden_size = 256
  config.train.num_steps = 1500
  config.train.learning_rate = 2e-3
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.eval.splits = ("validation", "test", "test_long")
  config.eval.length_bin = 5
  return config


def get_sweep(task: str | None, hyper) -> list[dict[str, Any]]:
  r"""The bottleneck comparison: Luong attention vs. the fixed-vector decoder, two seeds.

  python -m experiments.sweep --config=experiments/configs/synthetic.py:reverse \
      --root=runs/reverse_sweep --parallel=2
  """
  del task  # every task compares the same decoders; get_config(task) picks the data
  return hyper.product(hyper.axis("model.decoder.type", ["luong", "none_state"]), hyper.seeds(2))
