r"""Dates → ISO 8601 with Luong attention (the lecture notes' date-format experiment).

  python -m experiments.train --config=experiments/configs/dates.py --workdir=runs/dates

Character level, bidirectional LSTM encoder, Luong decoder with input feeding and global
`general` attention. Reaches ≥ 99% test exact match in a few minutes on a 2-core CPU.
Compare the plain seq2seq bottleneck with `--config.model.decoder.type=none_state`.
"""

import ml_collections

from experiments.configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.dataset.name = "dates"
  config.dataset.vocab = "char"
  config.data.source_buckets = (12, 20, 28, 40)
  config.data.target_buckets = (12,)  # counting </s>
  return config
