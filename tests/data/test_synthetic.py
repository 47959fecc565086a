import numpy as np
import pytest

from attn_research.data.datasets import synthetic
from attn_research.evaluation.alignment import parse_pharaoh

CONFIGS = {c.name: c for c in synthetic.Synthetic.BUILDER_CONFIGS}


def _reference_target(task: str, tokens: list[str]) -> list[str]:
  """Each task written independently of `synthetic`'s index arithmetic."""
  if task == "copy":
    return tokens
  if task == "reverse":
    return tokens[::-1]
  if task == "sort":
    return sorted(tokens)
  pairs = [tokens[i : i + 2][::-1] for i in range(0, len(tokens), 2)]
  return [t for pair in pairs for t in pair]


@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_targets_and_gold_alignments(task):
  rng = np.random.default_rng(0)
  for length in (1, 2, 5, 8, 13):
    tokens = [synthetic.ALPHABET[i] for i in rng.integers(5, size=length)]  # many repeats
    ex = synthetic.example(tokens, CONFIGS[task])
    target = ex["target"].split()
    assert target == _reference_target(task, tokens)
    sure = parse_pharaoh(ex["alignment"])
    possible = parse_pharaoh(ex["possible_alignment"])
    assert sure <= possible
    assert sorted(t for _, t in sure) == list(range(length))  # one sure link per target token
    assert sorted(s for s, _ in sure) == list(range(length))  # each source token used once
    for s, t in possible:
      assert tokens[s] == target[t]
    if task != "sort":
      assert possible == sure
    else:  # every equal letter is possible
      assert len(possible) == sum(tokens.count(x) for x in target)


def test_reverse_alignment_is_the_anti_diagonal():
  ex = synthetic.example(list("abc"), CONFIGS["reverse"])
  assert ex == {
    "source": "a b c",
    "target": "c b a",
    "alignment": "2-0 1-1 0-2",
    "possible_alignment": "2-0 1-1 0-2",
  }


def test_splits_are_deterministic_disjoint_and_long_split_is_longer(monkeypatch):
  monkeypatch.setattr(
    synthetic, "SPLIT_SIZES", {"train": 400, "validation": 50, "test": 50, "test_long": 50}
  )
  splits = synthetic.generate(CONFIGS["copy"])
  assert splits == synthetic.generate(CONFIGS["copy"])
  assert splits != synthetic.generate(CONFIGS["copy"], seed=1)
  sources = [e["source"] for s in splits.values() for e in s]
  assert len(sources) == len(set(sources)) == 550
  lengths = {name: [len(e["source"].split()) for e in s] for name, s in splits.items()}
  low, high = synthetic.TRAIN_LENGTHS
  for name in ("train", "validation", "test"):
    assert low <= min(lengths[name]) and max(lengths[name]) <= high
  assert min(lengths["test_long"]) > high
