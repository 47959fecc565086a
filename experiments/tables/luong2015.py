"""Luong, Pham & Manning 2015, "Effective Approaches to Attention-based NMT": Tables 1, 4, 6.

Paper numbers are copied from the paper (WMT'14 En→De, newstest2014; Table 6:
RWTH's 508 gold-aligned Europarl sentences). Tables 1 and 4 train on `debian_l10n/en-de`
at tiny and small scale; Table 6 needs gold alignments, which only `synthetic/*` has here.
"""

from experiments.tables.table import Claim, Column, Row, Setup, Table, tiny_l10n
from launch.sweep import Overrides

TINY_STEPS = 800  # train steps per trial at --scale=tiny (Tables 1 and 4)
TINY_STEPS_AER = 800  # train steps per trial at --scale=tiny (Table 6, synthetic/swap)
L10N = "experiments/configs/debian_l10n.py:en-de"
L10N_TINY, L10N_TINY_NOTE = tiny_l10n("en-de", TINY_STEPS)
SYNTHETIC = "experiments/configs/synthetic.py:swap"
WMT = "WMT'14 En→De newstest2014"
TOKENIZED_BLEU = Column("tokenized BLEU", "metrics.{split}.tokenized_bleu")
PPL = Column("ppl", "metrics.{split}.ppl")


def _model(layers: int, hidden: int, embedding: int) -> Overrides:
  """Luong's stacked unidirectional LSTM, the decoder started from the encoder's states."""
  return {
    "model.encoder.type": "uni",
    "model.encoder.cell": "lstm",
    "model.encoder.num_layers": layers,
    "model.decoder.num_layers": layers,
    "model.encoder.hidden_size": hidden,
    "model.embedding_size": embedding,
    "model.bridge": "last",
    "model.attention.window": 10,
  }


def _tiny_synthetic(steps: int) -> Overrides:
  return {
    "train.num_steps": steps,
    "train.batch_size": 64,
    "train.warmup_steps": 50,
    "train.eval_every": steps,  # no evaluation before the final one
    "train.checkpoint_every": 200,
  }


# The paper's optimizer: SGD at learning rate 1, gradient norm rescaled above 5, the rate
# halved from a start point on (`_PAPER_TRAINING` in epochs, `_sgd_halving` in steps).
_SGD_HALVING = {
  "train.optimizer": "sgd",
  "train.learning_rate": 1.0,
  "train.warmup_steps": 0,
  "train.grad_clip": 5.0,
  "train.schedule": "halving",
  "train.decay_factor": 0.5,
}
# 128 sentences a batch; 12 epochs, the rate halved every epoch after epoch 8 (the dropout
# models' schedule).
_PAPER_TRAINING = {
  **_SGD_HALVING,
  "train.decay_unit": "epoch",
  "train.decay_start": 8,
  "train.decay_every": 1,
  "train.num_epochs": 12,
  "train.batch_size": 128,
  "train.eval_every": 10_000,
  "train.checkpoint_every": 5_000,
  "data.max_train_words": 50,  # "we filter out sentence pairs whose lengths exceed 50 words"
}


def _sgd_halving(steps: int) -> Overrides:
  """The paper's recipe for its dropout models over `steps` steps standing for their 12
  epochs: SGD at rate 1, halved every twelfth of the run from 8/12 of it on."""
  return {
    **_SGD_HALVING,
    "train.decay_unit": "step",
    "train.decay_start": round(steps * 8 / 12),
    "train.decay_every": round(steps / 12),
  }


_PAPER_NOTE = (
  "Paper scale: WMT'14 with 50k-word Moses vocabularies, training pairs of ≤ 50 words, "
  "4×1000 LSTMs, dropout 0.2, D = 10, SGD at lr 1 for 12 epochs, the rate halved every "
  "epoch after epoch 8 (the paper's schedule for its dropout models). Greedy decoding."
)
_L10N_SETUPS = {
  "tiny": Setup(
    L10N_TINY,
    "debian_l10n/en-de",
    _model(1, 128, 128),
    note="Tiny scale: 1×128 LSTMs, 128-d embeddings, " + L10N_TINY_NOTE,
  ),
  "small": Setup(
    L10N,
    "debian_l10n/en-de",
    {
      **_model(2, 512, 512),
      "data.max_train_words": 50,
      "train.num_steps": 20_000,
      "train.eval_every": 2_000,
    },
    note="Small scale: 2×512 LSTMs, SentencePiece 8000, training pairs of ≤ 50 words, Adam "
    "with cosine decay, 20k steps.",
  ),
  "paper": Setup(
    L10N,
    "wmt14_translate/en-de (newstest2014)",
    {
      "dataset.name": "wmt14_translate/en-de",
      "dataset.vocab": "moses",
      "dataset.vocab_size": 50_000,
      "data.source_buckets": (16, 32, 50, 80, 128),
      "data.target_buckets": (17, 33, 51, 81, 150),
      **_model(4, 1000, 1000),
      **_PAPER_TRAINING,
    },
    note=_PAPER_NOTE,
  ),
}


def _attentional(alignment: str, score: str) -> Overrides:
  """Table 4's systems: reverse + dropout + feed input, with one attention variant."""
  return {
    "model.decoder.type": "luong",
    "model.encoder.reverse_source": True,
    "model.dropout": 0.2,
    "model.decoder.input_feeding": True,
    "model.attention.alignment": alignment,
    "model.attention.score": score,
  }


TABLE4 = Table(
  name="luong2015_table4",
  title="Luong et al. 2015, Table 4: attentional architectures",
  source="Luong et al. 2015, Table 4 (WMT'14 En→De newstest2014, tokenized BLEU), "
  "as the ar5iv rendering of the paper prints it.",
  paper_columns=(
    f"paper: ppl ({WMT})",
    f"paper: tokenized BLEU ({WMT})",
    f"paper: tokenized BLEU + unk replace ({WMT})",
  ),
  columns=(TOKENIZED_BLEU, PPL),
  rows=(
    Row(
      "global (location)",
      "global-location",
      ("6.4", "18.1", "19.3 (+1.2)"),
      _attentional("global", "location"),
    ),
    Row(
      "global (dot)", "global-dot", ("6.1", "18.6", "20.5 (+1.9)"), _attentional("global", "dot")
    ),
    Row(
      "global (general)",
      "global-general",
      ("6.1", "17.3", "19.1 (+1.8)"),
      _attentional("global", "general"),
    ),
    Row(
      "local-m (dot)",
      "local_m-dot",
      ("7.0", "x", "x"),
      _attentional("local_m", "dot"),
      note="the paper's ppl is 7.0 in the ar5iv rendering (the PDF may print >7.0); "
      "x = no BLEU reported.",
    ),
    Row(
      "local-m (general)",
      "local_m-general",
      ("6.2", "18.6", "20.4 (+1.8)"),
      _attentional("local_m", "general"),
    ),
    Row(
      "local-p (dot)", "local_p-dot", ("6.6", "18.0", "19.6 (+1.9)"), _attentional("local_p", "dot")
    ),
    Row(
      "local-p (general)",
      "local_p-general",
      ("5.9", "19", "20.9 (+1.9)"),
      _attentional("local_p", "general"),
    ),
  ),
  setups=_L10N_SETUPS,
  caption="Every system has a reversed source, dropout 0.2 and input feeding; they differ in "
  "the alignment (global, local-m, local-p with D = 10) and the score function. The paper's "
  "last column is after replacing `<unk>` from attention; we report before replacement (at "
  "tiny and small scale SentencePiece leaves no `<unk>` to replace). Our ppl is per target "
  "token of our vocabulary, the paper's per word.",
  claims=(
    Claim("local_p-general", "global-general", "tokenized_bleu", "19.0 vs 17.3"),
    Claim("local_m-general", "global-general", "tokenized_bleu", "18.6 vs 17.3"),
    Claim("global-dot", "global-general", "tokenized_bleu", "18.6 vs 17.3"),
    Claim("global-dot", "global-location", "tokenized_bleu", "18.6 vs 18.1"),
    Claim("local_p-general", "local_p-dot", "tokenized_bleu", "19.0 vs 18.0"),
  ),
)


def _ladder() -> tuple[Row, ...]:
  """Table 1's cumulative systems: each row adds one change to the row above."""
  steps = [
    (
      "Base",
      "base",
      ("10.6", "11.3"),
      {
        "model.decoder.type": "none_state",
        "model.encoder.reverse_source": False,
        "model.dropout": 0.0,
        "model.decoder.input_feeding": False,
      },
      "",
    ),
    ("+ reverse", "reverse", ("9.9", "12.6 (+1.3)"), {"model.encoder.reverse_source": True}, ""),
    ("+ dropout", "dropout", ("8.1", "14.0 (+1.4)"), {"model.dropout": 0.2}, ""),
    (
      "+ global attention (location)",
      "global-location",
      ("7.3", "16.8 (+2.8)"),
      {
        "model.decoder.type": "luong",
        "model.attention.alignment": "global",
        "model.attention.score": "location",
      },
      "",
    ),
    (
      "+ feed input",
      "feed_input",
      ("6.4", "18.1 (+1.3)"),
      {"model.decoder.input_feeding": True},
      "",
    ),
    (
      "+ local-p attention (general), replacing global (location)",
      "local_p-general",
      ("5.9", "19.0 (+0.9)"),
      {"model.attention.alignment": "local_p", "model.attention.score": "general"},
      "",
    ),
    (
      "+ unk replace",
      "unk_replace",
      ("", "20.9 (+1.9)"),
      {"decode.unk_replace": True},
      "a separate trial: the previous row's training config (same seed, so the same model) "
      "decoded with `<unk>` replaced by the most attended source word. SentencePiece (tiny, "
      "small) leaves no `<unk>`, so there it must equal the previous row.",
    ),
  ]
  rows, overrides = [], {}
  for label, name, paper, change, note in steps:
    overrides = {**overrides, **change}
    rows.append(Row(label, name, paper, overrides, note))
  return tuple(rows)


TABLE1 = Table(
  name="luong2015_table1",
  title="Luong et al. 2015, Table 1: from a plain LSTM encoder–decoder to local attention",
  source="Luong et al. 2015, Table 1 (WMT'14 En→De newstest2014, tokenized BLEU; "
  "gains over the row above in brackets). Its rows of "
  "other systems (WMT'14 winner, Jean et al., ensembles) are not models of this ladder.",
  paper_columns=(f"paper: ppl ({WMT})", f"paper: tokenized BLEU ({WMT})"),
  columns=(TOKENIZED_BLEU, PPL),
  rows=_ladder(),
  setups=_L10N_SETUPS,
  caption="Each row adds one change to the row above: source reversal, dropout 0.2, global "
  "location attention (Luong decoder), input feeding, local-p attention with the general "
  "score (D = 10), then `<unk>` replacement at decoding. The first three rows have no "
  "attention (`none_state`: the decoder starts from the encoder's last state). Our ppl is "
  "per target token of our vocabulary, the paper's per word.",
  figure="BLEU by source length (cf. Luong et al. 2015, Fig. 6)",
  claims=(
    Claim("reverse", "base", "tokenized_bleu", "12.6 vs 11.3"),
    Claim("dropout", "reverse", "tokenized_bleu", "14.0 vs 12.6"),
    Claim("global-location", "dropout", "tokenized_bleu", "16.8 vs 14.0"),
    Claim("feed_input", "global-location", "tokenized_bleu", "18.1 vs 16.8"),
    Claim("local_p-general", "feed_input", "tokenized_bleu", "19.0 vs 18.1"),
  ),
)

TABLE6 = Table(
  name="luong2015_table6",
  title="Luong et al. 2015, Table 6: alignment error rate",
  source="Luong et al. 2015, Table 6 (AER on RWTH's 508 gold-aligned English–German "
  "Europarl sentences), as the ACL PDF prints it. "
  "Its ensemble (0.34) and Berkeley aligner (0.32) rows are not single models here.",
  paper_columns=("paper: AER (RWTH En–De gold alignments)",),
  columns=(
    Column("AER", "metrics.{split}.aer", decimals=3),
    Column("exact match", "metrics.{split}.exact_match", decimals=3),
  ),
  rows=(
    Row("global (location)", "global-location", ("0.39",), _attentional("global", "location")),
    Row("local-m (general)", "local_m-general", ("0.34",), _attentional("local_m", "general")),
    Row("local-p (general)", "local_p-general", ("0.36",), _attentional("local_p", "general")),
  ),
  setups={
    "tiny": Setup(
      SYNTHETIC,
      "synthetic/swap",
      {
        **_model(1, 128, 64),
        **_tiny_synthetic(TINY_STEPS_AER),
        "eval.splits": ("validation", "test"),
      },
      note=f"Tiny scale: 1×128 LSTMs, Adam with cosine decay, {TINY_STEPS_AER} steps.",
    ),
    "small": Setup(
      SYNTHETIC,
      "synthetic/swap",
      {**_model(2, 512, 256), "train.num_steps": 5_000, "train.eval_every": 1_000},
      note="Small scale: 2×512 LSTMs, Adam with cosine decay, 5k steps.",
    ),
    "paper": Setup(
      SYNTHETIC,
      "synthetic/swap",
      {
        **_model(4, 1000, 1000),
        **_PAPER_TRAINING,
        **_sgd_halving(20_000),  # 20k steps stand for the paper's 12 epochs
        "train.num_epochs": 0.0,
        "train.num_steps": 20_000,
      },
      note="Paper scale: the paper's 4×1000 LSTMs, dropout 0.2, D = 10 and SGD at lr 1, "
      "20k steps on synthetic/swap standing for its 12 epochs: the rate halved every 1,667 "
      "steps from step 13,333 on (every epoch after epoch 8).",
    ),
  },
  caption="AER of forced-decoding alignments (the most attended source word of each "
  "reference word) against gold alignments. The RWTH gold alignments are not in this "
  "codebase; gold alignments exist here only for `synthetic/*`, so every scale trains and "
  "scores on `synthetic/swap` (neighbouring letters swapped: local reordering, as between "
  "English and German adjective–noun order). Systems as in Table 4: reversed source, "
  "dropout 0.2, input feeding.",
  claims=(
    Claim("local_m-general", "global-location", "aer", "0.34 vs 0.39"),
    Claim("local_p-general", "global-location", "aer", "0.36 vs 0.39"),
    Claim("local_m-general", "local_p-general", "aer", "0.34 vs 0.36"),
  ),
)


def _sgd_note(steps: int) -> str:
  start, every = round(steps * 8 / 12), round(steps / 12)
  return (
    f"Trained with the paper's recipe instead: SGD at rate 1, gradient norm rescaled above 5, "
    f"the rate halved at step {start:,} and every {every:,} steps after ({steps:,} steps "
    "standing for the paper's 12 epochs, halved after epoch 8)."
  )


def _recipe(table: Table, tiny_steps: int) -> Table:
  steps = {"tiny": tiny_steps, "small": table.setups["small"].overrides["train.num_steps"]}
  return table.with_recipe(
    {scale: _sgd_halving(n) for scale, n in steps.items()},
    {scale: _sgd_note(n) for scale, n in steps.items()},
  )


TABLE4_RECIPE = _recipe(TABLE4, TINY_STEPS)
TABLE6_RECIPE = _recipe(TABLE6, TINY_STEPS_AER)
