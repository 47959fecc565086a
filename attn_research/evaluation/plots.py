"""PNG figures: attention heatmaps and BLEU by source length.

Figures are drawn on an Agg canvas without pyplot (no global state, no display) and
written atomically.
"""

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attn_research.runs import atomic_write


def _save(fig: Figure, path: str) -> None:
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100)
  atomic_write(path, buffer.getvalue())


def save_heatmap(
  path: str,
  weights: np.ndarray,
  source_tokens: Sequence[str],
  target_tokens: Sequence[str],
  title: str = "",
) -> None:
  """Attention weights `[tgt_len, src_len]` (target rows, source columns), cropped to the
  tokens given; one row per target token, `</s>` included if it is in `target_tokens`."""
  weights = np.asarray(weights)[: len(target_tokens), : len(source_tokens)]
  cell = 0.28
  fig = Figure(
    figsize=(max(3.0, cell * len(source_tokens) + 1.5), max(2.5, cell * len(target_tokens) + 1.2)),
    layout="constrained",
  )
  ax = fig.add_subplot()
  image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="equal")
  ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=90, fontsize=8)
  ax.set_yticks(range(len(target_tokens)), target_tokens, fontsize=8)
  ax.xaxis.tick_top()
  ax.set_xlabel("source")
  ax.set_ylabel("target")
  if title:
    ax.set_title(title, fontsize=9, pad=40)
  fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
  _save(fig, path)


def save_bleu_by_length(
  path: str, curves: Mapping[str, Sequence[Mapping[str, float]]], title: str = ""
) -> None:
  """BLEU against source length, one line per run (Bahdanau et al. 2015, Fig. 2).

  Args:
    curves: label → bins from `metrics.bleu_by_length`.
  """
  fig = Figure(figsize=(6.0, 4.0), layout="constrained")
  ax = fig.add_subplot()
  for label, bins in curves.items():
    centres = [(b["min_length"] + b["max_length"]) / 2 for b in bins]
    ax.plot(centres, [b["bleu"] for b in bins], marker="o", label=label)
  ax.set_xlabel("source length (tokens, bin centre)")
  ax.set_ylabel("BLEU")
  ax.set_ylim(bottom=0)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  if title:
    ax.set_title(title, fontsize=10)
  _save(fig, path)
