import numpy as np
import pytest

from attn_research.data.pipeline import (
  Buckets,
  EncodedSplit,
  TrainBatches,
  decode_batches,
  eval_batches,
)
from attn_research.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary
from attn_research.errors import ConfigError


def _split(n=500, seed=0):
  rng = np.random.default_rng(seed)
  letters = "abcdefghij"
  sources = ["".join(rng.choice(list(letters), rng.integers(1, 30))) for _ in range(n)]
  sources[3] = ""  # empty source
  sources[4] = "a" * 45  # longer than the largest bucket
  targets = [s[::-1][:9] for s in sources]
  vocab = Vocabulary.build(sources, "char")
  return EncodedSplit.from_texts(sources, targets, vocab, vocab)


BUCKETS = Buckets(source=(8, 16, 32), target=(5, 10))


def test_batches_are_deterministic_resumable_and_of_few_shapes():
  split = _split()
  a = TrainBatches(split, BUCKETS, batch_size=16, seed=3)
  b = TrainBatches(split, BUCKETS, batch_size=16, seed=3)
  c = TrainBatches(split, BUCKETS, batch_size=16, seed=4)
  first = [next(a) for _ in range(60)]  # more than an epoch
  assert a.epoch >= 1
  shapes = set()
  for batch, other in zip(first, (next(b) for _ in range(60)), strict=True):
    for key in batch:
      np.testing.assert_array_equal(batch[key], other[key])
    shapes.add((batch["src"].shape, batch["tgt_in"].shape))
  assert shapes <= {((16, s), (16, t)) for s in BUCKETS.source for t in BUCKETS.target}
  assert not all(np.array_equal(x["index"], next(c)["index"]) for x in first[:5])
  assert a.dropped == {
    "empty": 1,
    "too long for the buckets": 1,
    "over data.max_train_words": 0,
  }

  # Resuming from a saved position yields exactly the batches that followed it.
  resumed = TrainBatches(split, BUCKETS, batch_size=16, seed=3)
  resumed.set_state({"epoch": 0, "position": 0})
  for _ in range(20):
    next(resumed)
  state = resumed.get_state()
  fresh = TrainBatches(split, BUCKETS, batch_size=16, seed=3)
  fresh.set_state(state)
  for expected in first[20:40]:
    np.testing.assert_array_equal(next(fresh)["index"], expected["index"])


def test_every_epoch_has_the_same_number_of_batches():
  batches = TrainBatches(_split(), BUCKETS, batch_size=16, seed=3)
  per_bucket = np.bincount(
    [sb * 2 + tb for sb, tb in BUCKETS.assign(batches.split)[batches.kept]], minlength=6
  )
  assert batches.batches_per_epoch == sum(n // 16 for n in per_bucket) > 10
  for epoch in range(3):
    for _ in range(batches.batches_per_epoch):
      next(batches)
      assert batches.epoch == epoch


def test_batch_layout_teacher_forcing():
  split = _split()
  batch = next(TrainBatches(split, BUCKETS, batch_size=8, seed=0))
  for row, i in enumerate(batch["index"]):
    src, tgt = split.sources[i], split.targets[i]
    n, m = len(src), len(tgt)
    np.testing.assert_array_equal(batch["src"][row, :n], src)
    assert batch["src_mask"][row].sum() == n and np.all(batch["src"][row, n:] == PAD_ID)
    assert batch["tgt_in"][row, 0] == BOS_ID
    np.testing.assert_array_equal(batch["tgt_in"][row, 1 : m + 1], tgt)
    np.testing.assert_array_equal(batch["tgt_out"][row, :m], tgt)
    assert batch["tgt_out"][row, m] == EOS_ID and batch["tgt_mask"][row].sum() == m + 1


def test_eval_batches_cover_every_example_once_or_refuse():
  split = _split()
  with pytest.raises(ConfigError, match=r"data\.source_buckets"):
    eval_batches(split, BUCKETS, 32, "test")
  wide = Buckets(source=(8, 16, 64), target=(5, 10))
  batches = eval_batches(split, wide, 32, "test")
  indices = np.concatenate([b["index"] for b in batches])
  assert sorted(indices[indices >= 0].tolist()) == list(range(len(split)))
  for b in batches:
    filler = b["index"] < 0
    assert not b["src_mask"][filler].any() and not b["tgt_mask"][filler].any()
  assert len({b["src"].shape for b in batches}) <= len(wide.source)


def test_decode_batches_group_by_source_length_only():
  split = _split()
  with pytest.raises(ConfigError, match=r"data\.source_buckets"):
    decode_batches(split, BUCKETS, 32, "test")
  wide = Buckets(source=(8, 16, 64), target=(5, 10))
  batches = decode_batches(split, wide, 32, "test")
  assert len(batches) == sum(
    -(-sum(1 for s in split.sources if low < len(s) <= high) // 32)
    for low, high in zip((-1, 8, 16), wide.source, strict=True)
  )
  indices = np.concatenate([b["index"] for b in batches])
  assert sorted(indices[indices >= 0].tolist()) == list(range(len(split)))
  for b in batches:
    assert set(b) == {"src", "src_mask", "index"}
    real = b["index"] >= 0
    lengths = b["src_mask"].sum(axis=1)
    assert not lengths[~real].any() and np.all(np.diff(lengths[real]) >= 0)
    for row in np.flatnonzero(real):
      source = split.sources[b["index"][row]]
      np.testing.assert_array_equal(b["src"][row, : len(source)], source)


def test_buckets_must_increase():
  with pytest.raises(ConfigError, match="increasing"):
    Buckets(source=(16, 8), target=(4,))


def test_max_words_drops_long_training_pairs_by_words_on_either_side():
  sources = ["a b", "a b c d", "a", "a b c", "b c", "c"] * 10
  targets = ["x", "x", "x y z w", "x y z", "y", "z"] * 10
  vocab = Vocabulary.build(sources + targets, "word")
  split = EncodedSplit.from_texts(sources, targets, vocab, vocab)
  buckets = Buckets(source=(8,), target=(8,))
  batches = TrainBatches(split, buckets, batch_size=4, seed=0, max_words=3)
  # Pairs 1 (4 source words) and 2 (4 target words) of every six are dropped.
  assert batches.dropped["over data.max_train_words"] == 20
  seen = np.concatenate([next(batches)["index"] for _ in range(10)])
  assert set(seen % 6) == {0, 3, 4, 5}
  assert sum(TrainBatches(split, buckets, batch_size=4, seed=0).dropped.values()) == 0

  with pytest.raises(ConfigError, match="max_train_words"):
    TrainBatches(split, buckets, batch_size=41, seed=0, max_words=3)


def test_pairs_with_an_empty_side_are_not_trained_on():
  sources = ["a b", "", "a", "  ", "b c", "c"] * 4
  targets = ["x", "x", " \t", "y", "", "z"] * 4
  vocab = Vocabulary.build(sources + targets, "word")
  split = EncodedSplit.from_texts(sources, targets, vocab, vocab)
  batches = TrainBatches(split, Buckets(source=(8,), target=(8,)), batch_size=2, seed=0)
  assert batches.dropped["empty"] == 16
  assert set(np.concatenate([next(batches)["index"] for _ in range(8)]) % 6) == {0, 5}


def test_a_token_budget_fills_each_shape_with_as_many_rows_as_fit():
  split = _split()
  batches = TrainBatches(split, BUCKETS, batch_size=16, seed=3, batch_tokens=160, multiple=2)
  assert batches.rows == {(0, 0): 20, (0, 1): 16, (1, 0): 10, (1, 1): 10, (2, 0): 4, (2, 1): 4}
  seen = []
  for _ in range(len(batches._plan)):
    batch = next(batches)
    rows, src_len = batch["src"].shape
    tgt_len = batch["tgt_in"].shape[1]
    assert rows * max(src_len, tgt_len) <= 160 and (batch["index"] >= 0).all()
    assert rows == batches.rows[BUCKETS.source.index(src_len), BUCKETS.target.index(tgt_len)]
    seen += batch["index"].tolist()
  assert len(seen) == len(set(seen)) and set(seen) <= set(batches.kept.tolist())
  # Each bucket leaves fewer than one batch for a later epoch.
  assert len(batches.kept) - len(seen) < sum(batches.rows.values())
  with pytest.raises(ConfigError, match=r"train\.batch_tokens=40 holds no batch of 2 rows of 32"):
    TrainBatches(split, BUCKETS, batch_size=16, seed=3, batch_tokens=40, multiple=2)


def test_each_host_builds_only_its_devices_rows_of_the_same_plan():
  split = _split()
  whole = TrainBatches(split, BUCKETS, batch_size=16, seed=3, multiple=4)
  hosts = [
    TrainBatches(split, BUCKETS, batch_size=16, seed=3, multiple=4, shard=shard)
    for shard in ((0, 1), (1, 3), (3, 4))
  ]
  for _ in range(40):
    batch = next(whole)
    parts = [next(h) for h in hosts]
    assert [len(p["index"]) for p in parts] == [4, 8, 4]
    for key in batch:
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), batch[key])


def _aligned_split():
  sources = ["a b c", "d e", "f g h i"]
  targets = ["x y", "z", "u v w"]
  vocab = Vocabulary.build(sources + targets, "word")
  split = EncodedSplit.from_texts(sources, targets, vocab, vocab)
  # 1-to-2 (target 0 ← sources 0, 2), unaligned target 1; "?" possible links count too.
  return split.with_alignments(["0-0 2-0 1-1", "", "3-0 0?2 1-2"], "train")


def test_gold_alignments_become_row_normalised_matrices():
  split = _aligned_split()
  batch = eval_batches(split, Buckets((4,), (4,)), batch_size=4, name="train")[0]
  gold = batch["alignment"]
  assert gold.shape == (4, 4, 4) and gold.dtype == np.float32
  expected = np.zeros((4, 4, 4), np.float32)
  expected[0, 0, [0, 2]] = 0.5  # a target word with k links weighs each 1/k
  expected[0, 1, 1] = 1.0
  expected[2, 0, 3] = 1.0
  expected[2, 2, [0, 1]] = 0.5
  np.testing.assert_array_equal(gold, expected)  # rows without links (and </s>) stay 0


@pytest.mark.parametrize(
  "lines,fragment",
  [
    (["0-0", "0-0"], "The train split has 3 examples but 2 alignment lines"),
    (["0-0 3-0", "", ""], "train alignment line 1 links 3-0, outside its sentence of 3 source"),
    (["0-0", "0:1", ""], "train alignment line 2: Not a Pharaoh link: '0:1'"),
  ],
)
def test_bad_gold_alignments_name_the_line(lines, fragment):
  split = _aligned_split()
  with pytest.raises(ConfigError, match=None) as error:
    split.with_alignments(lines, "train")
  assert fragment in str(error.value)


def test_gold_alignments_need_one_token_per_word():
  split = _split(n=20)  # a character vocabulary: words ≠ tokens
  with pytest.raises(ConfigError, match=r"use dataset\.vocab=word"):
    split.with_alignments([""] * 20, "train")
