"""Files an evaluated split leaves beside `result.json`: hypotheses, BLEU by source
length (PNG; the numbers are in `result.json`), attention heatmaps."""

import dataclasses
import os

import ml_collections
import numpy as np

from attn_research.data.vocab import Vocabulary
from attn_research.evaluation import plots, significance
from attn_research.model import DECODERS
from attn_research.runs import HEATMAPS, STATISTICS, atomic_write


@dataclasses.dataclass
class Evaluation:
  """What evaluating a split gives.

  Attributes:
    metrics: scalar metrics plus `bleu_by_length` bins; `aer` when the split has gold
      alignments and the decoder attends.
    hypotheses: detokenised hypotheses in split order.
    attention: example index → (decoded target tokens with `</s>`, attention weights
      `[len(tokens), src_len]`) for the first examples of the split, when asked for.
    statistics: per-sentence statistics of the metrics of `metrics.SCORES` (their
      sums are those metrics' values), for significance tests.
  """

  metrics: dict
  hypotheses: list[str]
  attention: dict[int, tuple[list[str], np.ndarray]]
  statistics: significance.SentenceStatistics


def run_label(config: ml_collections.ConfigDict) -> str:
  """A short name of the model variant for plots: decoder, and attention if it has one."""
  model = config.model
  if not DECODERS.get(model.decoder.type).attentional:
    return model.decoder.type
  return f"{model.decoder.type} · {model.attention.alignment} · {model.attention.score}"


def write_reports(
  directory: str,
  split: str,
  evaluation: Evaluation,
  source_texts: list[str],
  src_vocab: Vocabulary,
  label: str,
) -> list[str]:
  """Writes `hypotheses.<split>.txt`, `statistics.<split>.npz` (the per-sentence statistics
  of its metrics, for significance tests), `bleu_by_length.<split>.png` and
  `heatmaps/<split>/<index>.png` into `directory`.

  Returns:
    the paths written.
  """
  os.makedirs(directory, exist_ok=True)
  written = [os.path.join(directory, f"hypotheses.{split}.txt")]
  atomic_write(written[-1], "".join(h + "\n" for h in evaluation.hypotheses))
  written.append(os.path.join(directory, STATISTICS.format(split=split)))
  significance.save(written[-1], evaluation.statistics)
  written.append(os.path.join(directory, f"bleu_by_length.{split}.png"))
  plots.save_bleu_by_length(
    written[-1], {label: evaluation.metrics["bleu_by_length"]}, f"{split}: BLEU by source length"
  )
  if evaluation.attention:
    heatmaps = os.path.join(directory, HEATMAPS, split)
    os.makedirs(heatmaps, exist_ok=True)
    for index, (target_tokens, weights) in sorted(evaluation.attention.items()):
      written.append(os.path.join(heatmaps, f"{index:05d}.png"))
      plots.save_heatmap(
        written[-1],
        weights,
        src_vocab.split(source_texts[index]),
        target_tokens,
        f"{label} · {split} #{index}",
      )
  return written
