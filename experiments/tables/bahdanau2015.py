"""Bahdanau, Cho & Bengio 2015, "NMT by Jointly Learning to Align and Translate": Table 1
and Figure 2 (BLEU by sentence length).

Paper numbers are copied from the paper's Table 1 (WMT'14 En→Fr news-test-2014).
"""

from experiments.tables.table import Claim, Column, Row, Setup, Table, tiny_l10n
from launch.sweep import Overrides

TINY_STEPS = 800  # train steps per trial at --scale=tiny (RNNsearch-50* trains twice as long)
L10N = "experiments/configs/debian_l10n.py:en-fr"
# Every pair (max_words=0): each row sets its own length limit, 30 or 50.
L10N_TINY, L10N_TINY_NOTE = tiny_l10n("en-fr", TINY_STEPS, max_words=0)
NEWSTEST = "WMT'14 En→Fr news-test-2014"
ENCDEC: Overrides = {
  "model.encoder.cell": "gru",
  "model.encoder.type": "uni",
  "model.decoder.type": "none_state",
  "model.bridge": "last",
}
SEARCH: Overrides = {
  "model.encoder.cell": "gru",
  "model.encoder.type": "bi",
  "model.decoder.type": "bahdanau",
  "model.attention.score": "additive",
  "model.bridge": "dense",
  "model.decoder.deep_output": True,
}
WORDS_30: Overrides = {"data.max_train_words": 30}
WORDS_50: Overrides = {"data.max_train_words": 50}


# Adadelta as the paper trained (ρ 0.95, ε 1e-6; its rate is 1), at every scale's steps.
_ADADELTA: Overrides = {
  "train.optimizer": "adadelta",
  "train.learning_rate": 1.0,
  "train.schedule": "constant",
  "train.warmup_steps": 0,
  "train.grad_clip": 1.0,
}
_ADADELTA_NOTE = (
  "Trained with the paper's recipe instead: Adadelta (ρ 0.95, ε 1e-6) at rate 1, no "
  "schedule, gradient norm clipped at 1."
)


def _setup(scale_note: str, steps: int, overrides: Overrides, config: str, data: str) -> Setup:
  return Setup(
    config,
    data,
    {"model.encoder.num_layers": 1, "model.decoder.num_layers": 1, **overrides},
    per_row={"rnnsearch-50-longer": {"train.num_steps": 2 * steps, "train.eval_every": 2 * steps}},
    note=scale_note,
  )


TABLE = Table(
  name="bahdanau2015_table1",
  title="Bahdanau et al. 2015, Table 1: RNNencdec vs RNNsearch",
  source="Bahdanau et al. 2015, Table 1 (WMT'14 En→Fr news-test-2014, BLEU; 'No UNK' = "
  "sentences without unknown words).",
  paper_columns=(f"paper: BLEU, all ({NEWSTEST})", f"paper: BLEU, no UNK ({NEWSTEST})"),
  columns=(
    Column("tokenized BLEU", "metrics.{split}.tokenized_bleu"),
    Column("ppl", "metrics.{split}.ppl"),
  ),
  rows=(
    Row("RNNencdec-30", "rnnencdec-30", ("13.93", "24.19"), {**ENCDEC, **WORDS_30}),
    Row("RNNsearch-30", "rnnsearch-30", ("21.50", "31.44"), {**SEARCH, **WORDS_30}),
    Row("RNNencdec-50", "rnnencdec-50", ("17.82", "26.71"), {**ENCDEC, **WORDS_50}),
    Row("RNNsearch-50", "rnnsearch-50", ("26.75", "34.16"), {**SEARCH, **WORDS_50}),
    Row(
      "RNNsearch-50*",
      "rnnsearch-50-longer",
      ("28.45", "36.15"),
      {**SEARCH, **WORDS_50},
      note="trained twice as many steps as RNNsearch-50 at tiny and small scale (the paper: "
      "until the development score stopped improving, 6.67×10⁵ updates).",
    ),
    Row(
      "Moses",
      "moses",
      ("33.30", "35.63"),
      note="the paper's phrase-based baseline, not a neural model.",
    ),
  ),
  setups={
    "tiny": _setup(
      "Tiny scale: 128-d GRUs (2×64 bidirectional encoder), 128-d embeddings, " + L10N_TINY_NOTE,
      TINY_STEPS,
      {
        "model.encoder.hidden_size": 128,
        "model.embedding_size": 128,
        "model.dropout": 0.0,
      },
      L10N_TINY,
      "debian_l10n/en-fr",
    ),
    "small": _setup(
      "Small scale: 1024-d GRUs (2×512 bidirectional encoder), 512-d embeddings, "
      "SentencePiece 8000, Adam with cosine decay, 20k steps.",
      20_000,
      {
        "model.encoder.hidden_size": 1024,
        "model.embedding_size": 512,
        "model.dropout": 0.0,
        "train.num_steps": 20_000,
        "train.eval_every": 2_000,
      },
      L10N,
      "debian_l10n/en-fr",
    ),
    "paper": Setup(
      L10N,
      "wmt14_translate/en-fr (news-test-2014)",
      {
        "dataset.name": "wmt14_translate/en-fr",
        "dataset.vocab": "moses",
        "dataset.vocab_size": 30_000,
        "data.source_buckets": (16, 32, 50, 80, 128),
        "data.target_buckets": (17, 33, 51, 81, 160),
        "model.encoder.num_layers": 1,
        "model.decoder.num_layers": 1,
        "model.encoder.hidden_size": 2000,
        "model.embedding_size": 620,
        "model.attention.size": 1000,
        "model.decoder.maxout_size": 500,
        "model.dropout": 0.0,
        **_ADADELTA,
        "train.batch_size": 80,
        "train.eval_every": 10_000,
        "train.checkpoint_every": 5_000,
      },
      per_row={
        "rnnencdec-30": {"train.num_steps": 846_000, "model.encoder.hidden_size": 1000},
        "rnnsearch-30": {"train.num_steps": 471_000},
        "rnnencdec-50": {"train.num_steps": 600_000, "model.encoder.hidden_size": 1000},
        "rnnsearch-50": {"train.num_steps": 288_000},
        "rnnsearch-50-longer": {"train.num_steps": 667_000},
      },
      note="Paper scale: WMT'14 En→Fr from TFDS (the paper selected 348M words of it), "
      "30k-word Moses vocabularies, 2×1000 GRU encoder, 620-d embeddings, 1000-d alignment "
      "model, maxout 500, batches of 80, gradient norm clipped at 1, each model's update count "
      "from the paper's Table 2, Adadelta (ρ 0.95, ε 1e-6) as the paper. The paper's beam "
      "width is not stated; we decode greedily.",
    ),
  },
  caption="RNNencdec: unidirectional GRU encoder, the decoder started from its last state, "
  "no attention (`none_state`). RNNsearch: a bidirectional GRU encoder of the same state "
  "size, Bahdanau's decoder (query s_{i−1}, additive score, context into the GRU step, maxout deep output), s_0 = tanh(W_s ←h_1). "
  "'-30/-50' is the longest training sentence in words (source and target); evaluation "
  "keeps every sentence. We do not measure the paper's 'no UNK' subset. The figure overlays "
  "our BLEU by source length for every row (the paper's Fig. 2 exists only as a plot).",
  figure="BLEU by source length (cf. Bahdanau et al. 2015, Fig. 2)",
  claims=(
    Claim("rnnsearch-30", "rnnencdec-30", "tokenized_bleu", "21.50 vs 13.93"),
    Claim("rnnsearch-50", "rnnencdec-50", "tokenized_bleu", "26.75 vs 17.82"),
    Claim("rnnsearch-50", "rnnsearch-30", "tokenized_bleu", "26.75 vs 21.50"),
    Claim("rnnencdec-50", "rnnencdec-30", "tokenized_bleu", "17.82 vs 13.93"),
    Claim("rnnsearch-50-longer", "rnnsearch-50", "tokenized_bleu", "28.45 vs 26.75"),
  ),
)

RECIPE_TABLE = TABLE.with_recipe(
  {"tiny": _ADADELTA, "small": _ADADELTA}, {"tiny": _ADADELTA_NOTE, "small": _ADADELTA_NOTE}
)
