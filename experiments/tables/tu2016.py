"""Tu, Lu, Liu, Liu & Li 2016, "Modeling Coverage for Neural Machine Translation": an
RNNsearch with coverage in its attention score, against none.

The paper trains GroundHog's RNNsearch (bidirectional GRU encoder, Bahdanau decoder and
additive attention, 1000 units, 620-d embeddings, 30k vocabularies, sentences of ≤ 80
words) on 1.25M LDC Chinese–English pairs and tests on NIST MT. That corpus is licensed
(LDC), not in this package's catalog, and the paper's BLEU table could not be read for
this package, so there is no paper column; See et al. 2017's coverage with its loss is
added as the fourth row.
"""

from experiments.tables.table import Claim, Column, Row, Setup, Table, tiny_l10n
from launch.sweep import Overrides

TINY_STEPS = 800  # train steps per trial at --scale=tiny
SMALL_STEPS = 20_000
PAPER_STEPS = 60_000


def _see_phase(steps: int) -> dict[str, Overrides]:
  """See et al. trained without the coverage loss until convergence, then a short phase
  with it: here its last eighth of the steps."""
  return {"see_loss": {"train.coverage_loss_start": steps - steps // 8}}


L10N = "experiments/configs/debian_l10n.py:en-de"
L10N_TINY, L10N_TINY_NOTE = tiny_l10n("en-de", TINY_STEPS)

# GroundHog's RNNsearch: GRU cells, a bidirectional encoder, s₀ = tanh(W ←h₁), the
# Bahdanau decoder with its maxout deep output and additive attention.
_ARCHITECTURE: Overrides = {
  "model.encoder.type": "bi",
  "model.encoder.cell": "gru",
  "model.bridge": "dense",
  "model.decoder.type": "bahdanau",
  "model.attention.score": "additive",
  "model.attention.alignment": "global",
}


def _row(label: str, name: str, coverage: str, loss: float = 0.0) -> Row:
  overrides = {"model.attention.coverage": coverage}
  if loss:
    overrides["train.coverage_loss"] = loss
  return Row(label, name, (), overrides)


TABLE = Table(
  name="tu2016_coverage",
  title="Tu et al. 2016: coverage in the attention of an RNNsearch",
  source="Tu et al. 2016 train on 1.25M LDC Chinese–English pairs and test on NIST MT02–"
  "MT06, which this package cannot build (LDC licence), and their BLEU table could not be "
  "read: no paper column. The paper's claim (abstract): coverage 'significantly improves "
  "both translation and alignment quality over standard attention-based NMT'.",
  paper_columns=(),
  columns=(
    Column("BLEU", "metrics.{split}.bleu"),
    Column("ppl", "metrics.{split}.ppl"),
    Column("chrF", "metrics.{split}.chrf"),
  ),
  rows=(
    _row("RNNsearch (no coverage)", "none", "none"),
    _row("+ linguistic coverage, fertility (Tu)", "tu_linguistic", "tu_linguistic"),
    _row("+ NN-based coverage, d = 10 (Tu)", "tu_nn", "tu_nn"),
    _row("+ coverage vector, loss λ = 1 in the last 1/8 (See 2017)", "see_loss", "see", 1.0),
  ),
  setups={
    "tiny": Setup(
      L10N_TINY,
      "debian_l10n/en-de",
      {**_ARCHITECTURE, "model.encoder.hidden_size": 128, "model.embedding_size": 128},
      per_row=_see_phase(TINY_STEPS),
      note="Tiny scale: bi-GRU 2×64, 128-d embeddings, " + L10N_TINY_NOTE,
    ),
    "small": Setup(
      L10N,
      "debian_l10n/en-de",
      {
        **_ARCHITECTURE,
        "model.encoder.hidden_size": 1000,
        "model.embedding_size": 620,
        "data.max_train_words": 50,
        "train.num_steps": SMALL_STEPS,
        "train.eval_every": 2_000,
      },
      per_row=_see_phase(SMALL_STEPS),
      note="Small scale: the paper's sizes (1000 units, 620-d embeddings), SentencePiece "
      "8000, training pairs of ≤ 50 words, Adam with cosine decay, 20k steps.",
    ),
    "paper": Setup(
      L10N,
      "iwslt15/en-vi (tst2013)",
      {
        **_ARCHITECTURE,
        "dataset.name": "iwslt15/en-vi",
        "dataset.vocab": "word",
        "dataset.vocab_size": 30_000,
        "data.max_train_words": 80,
        "data.source_buckets": (16, 32, 50, 80),
        "data.target_buckets": (17, 33, 51, 81),
        "model.encoder.hidden_size": 1000,
        "model.embedding_size": 620,
        "train.optimizer": "adam",
        "train.num_steps": PAPER_STEPS,
        "train.batch_size": 80,
        "train.eval_every": 5_000,
        "train.checkpoint_every": 5_000,
      },
      per_row=_see_phase(PAPER_STEPS),
      note="Paper scale: the paper's model (1000 units, 620-d embeddings, 30k-word "
      "vocabularies, sentences of ≤ 80 words, batches of 80) on IWSLT'15 en→vi, the "
      "catalog's nearest public corpus to the paper's LDC zh→en; Adam instead of the "
      "paper's AdaDelta.",
    ),
  },
  caption="One RNNsearch, its attention score reading a coverage vector C_{t−1} inside the "
  "tanh: Tu's linguistic coverage with fertility (C += a / Φ, Φ = 2σ(U_f h̄)), Tu's "
  "NN-based coverage (a GRU of 10 units per source word), and See et al.'s coverage "
  "vector (C += a) trained with λ Σ min(a, C) in the last eighth of the steps only (See et "
  "al.: 'train WITHOUT coverage until converged, and then … a short phase WITH coverage'). "
  "Greedy decoding.",
  claims=(
    Claim("tu_linguistic", "none", "bleu"),
    Claim("tu_nn", "none", "bleu"),
  ),
)
