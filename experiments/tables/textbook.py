"""The seed textbook's chapter-8 experiment (Deep Learning from Scratch 2): date formats →
ISO dates with seq2seq, peeky seq2seq and attention.

The lecture notes describe the experiment but print no numbers, so this table shows ours
only.
"""

from experiments.tables.table import Claim, Column, Row, Setup, Table

TINY_STEPS = 400  # train steps per trial at --scale=tiny
DATES = "experiments/configs/dates.py"
_UNI = {"model.encoder.type": "uni", "model.encoder.num_layers": 1, "model.decoder.num_layers": 1}

TABLE = Table(
  name="textbook_dates",
  title="Lecture notes, chapter 8: dates with seq2seq, peeky seq2seq and attention",
  source="the lecture notes describe the date-format experiment without numbers: there is "
  "no paper column.",
  paper_columns=(),
  columns=(
    Column("exact match", "metrics.{split}.exact_match", decimals=4),
    Column("ppl", "metrics.{split}.ppl", decimals=3),
  ),
  rows=(
    Row("seq2seq", "seq2seq", (), {"model.decoder.type": "none_state"}),
    Row("peeky seq2seq", "peeky", (), {"model.decoder.type": "none_input"}),
    Row(
      "seq2seq + attention",
      "attention",
      (),
      {"model.decoder.type": "luong", "model.decoder.input_feeding": False},
      note="Luong decoder, global `general` score, no input feeding (the textbook's decoder "
      "feeds [c; h] straight to its output layer).",
    ),
  ),
  setups={
    "tiny": Setup(
      DATES,
      "dates",
      {
        **_UNI,
        "model.encoder.hidden_size": 128,
        "train.num_steps": TINY_STEPS,
        "train.warmup_steps": 50,
        "train.eval_every": TINY_STEPS,
        "train.checkpoint_every": 200,
      },
      note=f"Tiny scale: 1×128 LSTMs, character level, Adam with cosine decay, {TINY_STEPS} "
      "steps of 128.",
    ),
    "small": Setup(
      DATES,
      "dates",
      _UNI,
      note="Small scale: the dates config (1×256 LSTMs, 1000 steps of 128).",
    ),
    "paper": Setup(
      DATES,
      "dates",
      {**_UNI, "train.num_steps": 4000},
      note="Paper scale: the lecture notes give no hyperparameters; the dates config trained "
      "4000 steps.",
    ),
  },
  caption="seq2seq: the decoder starts from the encoder's last state (`none_state`, the "
  "fixed-vector bottleneck). Peeky: that state also enters every decoder step "
  "(`none_input`). Attention: every encoder state is attended. One unidirectional LSTM layer "
  "each side; exact match is the fraction of test dates converted without an error.",
  claims=(  # the notes' order, without numbers
    Claim("attention", "peeky", "exact_match"),
    Claim("peeky", "seq2seq", "exact_match"),
  ),
)
