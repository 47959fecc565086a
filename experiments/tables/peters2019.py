"""Peters, Niculae & Martins 2019, "Sparse Sequence-to-Sequence Models": softmax vs
sparsemax vs 1.5-entmax attention in an RNN translation model.

Their attention experiments train OpenNMT-py's bidirectional-LSTM model with global
`general` attention and input feeding on IWSLT'17 de↔en, KFTT ja↔en and WMT'16 ro↔en.
None of those corpora is in this package's catalog, and the paper's BLEU table could not
be read, so there is no paper column: the caption gives the paper's claim in its own words
(the abstract's), not numbers.
"""

from experiments.tables.table import Claim, Column, Row, Setup, Table, tiny_l10n
from launch.sweep import Overrides

TINY_STEPS = 800  # train steps per trial at --scale=tiny
L10N = "experiments/configs/debian_l10n.py:en-de"
L10N_TINY, L10N_TINY_NOTE = tiny_l10n("en-de", TINY_STEPS)

# OpenNMT-py's RNN defaults that the paper trained: a bidirectional LSTM encoder, a Luong
# decoder with input feeding and global `general` attention, dropout 0.3.
_ARCHITECTURE: Overrides = {
  "model.encoder.type": "bi",
  "model.encoder.cell": "lstm",
  "model.decoder.type": "luong",
  "model.decoder.input_feeding": True,
  "model.attention.score": "general",
  "model.attention.alignment": "global",
  "model.dropout": 0.3,
}


def _row(label: str, normalizer: str) -> Row:
  return Row(label, normalizer, (), {"model.attention.normalizer": normalizer})


TABLE = Table(
  name="peters2019_sparse",
  title="Peters et al. 2019: softmax, sparsemax and 1.5-entmax attention",
  source="Peters, Niculae & Martins 2019 train on IWSLT'17 de↔en, KFTT ja↔en and WMT'16 "
  "ro↔en, none of which this package can build, and their BLEU table could not be read: "
  "no paper column. The paper's abstract: the sparse mappings give 'consistent gains over "
  "dense models' in machine translation, with sparse, interpretable alignments.",
  paper_columns=(),
  columns=(
    Column("BLEU", "metrics.{split}.bleu"),
    Column("ppl", "metrics.{split}.ppl"),
    Column("attended positions", "metrics.{split}.attention_support", decimals=1),
  ),
  rows=(
    _row("softmax", "softmax"),
    _row("sparsemax", "sparsemax"),
    _row("1.5-entmax", "entmax15"),
  ),
  setups={
    "tiny": Setup(
      L10N_TINY,
      "debian_l10n/en-de",
      {**_ARCHITECTURE, "model.encoder.hidden_size": 128, "model.embedding_size": 128},
      note="Tiny scale: bi-LSTM 2×64, 128-d embeddings, " + L10N_TINY_NOTE,
    ),
    "small": Setup(
      L10N,
      "debian_l10n/en-de",
      {
        **_ARCHITECTURE,
        "model.encoder.num_layers": 2,
        "model.decoder.num_layers": 2,
        "model.encoder.hidden_size": 500,
        "model.embedding_size": 500,
        "data.max_train_words": 50,
        "train.num_steps": 20_000,
        "train.eval_every": 2_000,
      },
      note="Small scale: OpenNMT-py's default sizes (2 layers of 500, bidirectional 2×250), "
      "SentencePiece 8000, training pairs of ≤ 50 words, Adam with cosine decay, 20k steps.",
    ),
    "paper": Setup(
      L10N,
      "iwslt15/en-vi (tst2013)",
      {
        **_ARCHITECTURE,
        "dataset.name": "iwslt15/en-vi",
        "dataset.vocab": "spm",
        "dataset.vocab_size": 16_000,
        "data.source_buckets": (16, 32, 50, 80, 128, 256),
        "data.target_buckets": (17, 33, 51, 81, 129, 300),
        "model.encoder.num_layers": 2,
        "model.decoder.num_layers": 2,
        "model.encoder.hidden_size": 500,
        "model.embedding_size": 500,
        "train.num_steps": 30_000,
        "train.batch_size": 64,
        "train.eval_every": 2_000,
        "train.checkpoint_every": 2_000,
      },
      note="Paper scale: the nearest corpus the catalog has to IWSLT'17 de↔en is IWSLT'15 "
      "en→vi (TED talks, the same campaign); OpenNMT-py's default sizes, SentencePiece "
      "16000, Adam with cosine decay, 30k steps of 64 pairs.",
    ),
  },
  caption="One model, three normalisers of the attention energies: softmax (dense), "
  "sparsemax (Martins & Astudillo 2016) and 1.5-entmax (exact, by sorting). 'Attended "
  "positions' is the mean number of source positions with a nonzero attention weight per "
  "reference token under teacher forcing. Greedy decoding.",
  claims=(Claim("entmax15", "softmax", "bleu"),),
)
