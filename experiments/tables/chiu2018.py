"""Chiu & Raffel 2018, "Monotonic Chunkwise Attention": soft attention, hard monotonic
attention and MoChA, which attends softly over a chunk of w positions ending where the
monotonic process stops.

The paper reports WSJ speech recognition and CNN/Daily Mail summarisation, neither of
which can be built offline here. Its tables could not be read for this package: the
paper's numbers below are as the project's reference notes give them, which mark them
unverified. The rows run on `dates` and `synthetic/swap` (whose neighbour swaps a chunk of
2 can attend to and a single monotonic position cannot) and, at paper scale, IWSLT'15
en→vi.
"""

from experiments.tables.raffel2017 import COLUMNS, SMALL, TINY, dataset_rows, paper_setup
from experiments.tables.table import Claim, Table

CHUNK = 2  # w: the paper's best WSJ chunk (unverified); swap needs 2

TABLE = Table(
  name="chiu2018_mocha",
  title="Chiu & Raffel 2018: soft attention, hard monotonic attention and MoChA",
  source="Chiu & Raffel 2018 report WSJ word error rates and CNN/Daily Mail ROUGE, neither "
  "available offline; their tables could not be read here, and the numbers shown are the "
  "project's reference notes' (marked unverified there: WSJ WER soft 14.2, MoChA 13.9; "
  "CNN/DM ROUGE-1/2 soft 39.11/15.76, hard monotonic 31.14/11.16, MoChA 35.46/13.55).",
  paper_columns=("paper: WSJ WER % (unverified)", "paper: CNN/DM ROUGE-1 / 2 (unverified)"),
  columns=COLUMNS,
  rows=(
    *dataset_rows(
      "soft attention", "soft", ("14.2", "39.11 / 15.76"), {"model.attention.alignment": "global"}
    ),
    *dataset_rows(
      "hard monotonic attention",
      "monotonic",
      ("", "31.14 / 11.16"),
      {"model.attention.alignment": "monotonic"},
    ),
    *dataset_rows(
      f"MoChA, w = {CHUNK}",
      "mocha",
      ("13.9", "35.46 / 13.55"),
      {"model.attention.alignment": "mocha", "model.attention.chunk": CHUNK},
    ),
  ),
  setups={
    "tiny": TINY,
    "small": SMALL,
    "paper": paper_setup(
      "Paper scale: IWSLT'15 en→vi, a translation task in place of the paper's speech and "
      "summarisation (512 units, 17k-word vocabularies, dropout 0.2), Adam with cosine "
      "decay, 30k steps of 64 pairs; the swap rows run synthetic/swap in the same model."
    ),
  },
  caption="One model, three attentions: soft (a softmax over every source position), hard "
  "monotonic (Raffel et al. 2017) and MoChA (a softmax over the w positions ending where "
  "the monotonic process stops, from a second, chunk energy). The monotonic rows train with "
  "their expectation (recursive, exact form, pre-sigmoid noise N(0, 1), r from −1) and decode with "
  "the hard process, whose cost per step does not grow with the source. 'AER' is that "
  "of the attention the model decodes with, 'AER, expected alignment' that of the "
  "monotonic rows' training-time expectation, both under teacher forcing. Greedy "
  "decoding.",
  claims=(  # exact match of dates stands in for ROUGE; at paper scale the rows run en→vi
    Claim(
      "mocha_dates",
      "monotonic_dates",
      "exact_match",
      "CNN/DM ROUGE-1 35.46 vs 31.14",
      scales=("tiny", "small"),
    ),
  ),
)
