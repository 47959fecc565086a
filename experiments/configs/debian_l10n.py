r"""English → German (or fr, ko, vi) LibreOffice UI strings and help paragraphs, Luong attention.

  python -m experiments.data --dataset=debian_l10n/en-de --fetch   # once: apt-get download
  python -m experiments.train --config=experiments/configs/debian_l10n.py:en-de \
      --workdir=runs/l10n_en_de

SentencePiece (unigram, 8000 pieces per side, trained on the training split), a
bidirectional LSTM encoder and a Luong decoder with input feeding and global `general`
attention: test sacreBLEU 26.3 on en-de after 73.7 min on a shared 2-core CPU. Training
drops the ~0.2% of pairs longer than the largest buckets; evaluation keeps every pair.
"""

import ml_collections

from experiments.configs import dates


def get_config(pair: str = "en-de") -> ml_collections.ConfigDict:
  config = dates.get_config()
  config.dataset.name = f"debian_l10n/{pair}"
  config.dataset.vocab = "spm"
  config.dataset.vocab_size = 8000
  config.data.source_buckets = (16, 32, 64, 128)
  config.data.target_buckets = (17, 33, 65, 150)  # counting </s>
  config.model.embedding_size = 256
  config.model.dropout = 0.2
  config.model.encoder.hidden_size = 512  # 2 × 256
  config.train.num_steps = 3000
  config.train.batch_size = 64
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 200
  config.train.eval_every = 1000
  config.train.checkpoint_every = 500
  config.eval.batch_size = 128
  config.eval.num_heatmaps = 8
  return config
