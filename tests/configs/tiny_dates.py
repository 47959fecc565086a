"""The dates config shrunk to train in seconds on CPU (tests only)."""

import ml_collections

from experiments.configs import dates


def get_config() -> ml_collections.ConfigDict:
  config = dates.get_config()
  config.model.embedding_size = 16
  config.model.encoder.hidden_size = 32
  config.train.num_steps = 300
  config.train.batch_size = 64
  config.train.learning_rate = 1e-2
  config.train.warmup_steps = 20
  config.train.log_every = 25
  config.train.eval_every = 100
  config.train.checkpoint_every = 100
  config.eval.batch_size = 512
  config.eval.num_heatmaps = 1  # one is enough to test them; each takes ~0.3 s to draw
  # Two source shapes, not the dates config's four: each is one more compiled train step,
  # evaluation step and decoder, and two still exercise the bucketing.
  config.data.source_buckets = (20, 40)
  return config
