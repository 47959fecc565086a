import struct

import numpy as np

from attn_research.evaluation import plots


def _png_size(path) -> tuple[int, int]:
  with open(path, "rb") as f:
    header = f.read(24)
  assert header[:8] == b"\x89PNG\r\n\x1a\n"
  return struct.unpack(">II", header[16:24])


def test_heatmap_and_length_plot_are_pngs(tmp_path):
  weights = np.eye(4)[::-1]
  plots.save_heatmap(str(tmp_path / "h.png"), weights, list("abcd"), [*"dcb", "</s>"], "t")
  width, height = _png_size(tmp_path / "h.png")
  assert width > 100 and height > 100
  bins = [
    {"min_length": 1, "max_length": 10, "num_examples": 3, "bleu": 50.0},
    {"min_length": 11, "max_length": 20, "num_examples": 2, "bleu": 20.0},
  ]
  plots.save_bleu_by_length(str(tmp_path / "b.png"), {"a": bins, "b": bins[:1]})
  assert _png_size(tmp_path / "b.png")[0] > 100
  assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "h.png"]  # no temp files left
