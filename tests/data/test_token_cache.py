import os
import threading

import numpy as np
import pytest

from attn_research import runs
from attn_research.data import datasets, token_cache
from attn_research.data.datasets import text
from attn_research.data.pipeline import Buckets, EncodedSplit, TrainBatches
from attn_research.data.token_cache import TokenCache
from attn_research.data.tokenizers import reservoir_sample
from attn_research.data.vocab import Vocabulary
from attn_research.errors import ConfigError
from attn_research.training.data import cache_dir, prepare_data
from experiments.configs import text as text_config
from tests.conftest import named

SOURCES = ["a b c", "", "d e", "a a a a a a", "b", "c d e a", "e e", "  ", "a c", "d"] * 7
TARGETS = ["x y", "z", "", "y y y", "x", "z z z z", "y", "x", "   ", "z y"] * 7


def _files(tmp_path, sources=SOURCES, targets=TARGETS) -> str:
  src, tgt = tmp_path / "train.xx", tmp_path / "train.yy"
  src.write_text("".join(s + "\n" for s in sources))
  tgt.write_text("".join(t + "\n" for t in targets))
  return f"{src},{tgt}"


def _vocabs():
  return Vocabulary.build(SOURCES, "word"), Vocabulary.build(TARGETS, "word")


def _assert_same_split(cached: EncodedSplit, memory: EncodedSplit):
  assert len(cached) == len(memory)
  for i in range(len(memory)):
    np.testing.assert_array_equal(cached.sources[i], memory.sources[i])
    np.testing.assert_array_equal(cached.targets[i], memory.targets[i])
  for name in ("source_words", "target_words", "target_blank"):
    np.testing.assert_array_equal(getattr(cached, name), getattr(memory, name))


def test_a_split_is_encoded_once_and_read_back_from_disk(tmp_path):
  files = _files(tmp_path)
  src_vocab, tgt_vocab = _vocabs()
  cache = TokenCache(str(tmp_path / "cache"))
  streams = []

  def pairs():
    streams.append(1)
    return text.stream_pairs(files)

  key = token_cache.key(text.fingerprint(files), src_vocab.to_json(), tgt_vocab.to_json())
  _, built = cache.split(key, pairs, src_vocab, tgt_vocab)
  second, built_again = cache.split(key, pairs, src_vocab, tgt_vocab)
  assert (built, built_again, len(streams)) == (True, False, 1)
  assert isinstance(second.sources.ids, token_cache.FileIds)
  assert second.sources.ids.dtype == np.uint16
  assert second.source_texts is None
  memory = EncodedSplit.from_texts(SOURCES, TARGETS, src_vocab, tgt_vocab)
  _assert_same_split(second, memory)
  # Training reads the same batches from the cache as from memory.
  buckets = Buckets((4, 8), (3, 6))
  a = TrainBatches(second, buckets, batch_size=4, seed=1, max_words=5)
  b = TrainBatches(memory, buckets, batch_size=4, seed=1, max_words=5)
  assert (
    a.dropped
    == b.dropped
    == {
      "empty": 28,
      "too long for the buckets": 0,
      "over data.max_train_words": 7,
    }
  )
  for _ in range(20):
    x, y = next(a), next(b)
    for name in x:
      np.testing.assert_array_equal(x[name], y[name])
  # Nothing but the cache and its lock is left in the directory.
  assert sorted(os.listdir(cache.directory)) == [f"tokens-{key}", f"tokens-{key}.lock"]


def test_a_killed_build_leaves_no_cache_and_the_next_build_clears_it(tmp_path):
  files = _files(tmp_path)
  src_vocab, tgt_vocab = _vocabs()
  cache = TokenCache(str(tmp_path / "cache"))

  def dies():
    yield from list(text.stream_pairs(files))[:5]
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    cache.split("k", dies, src_vocab, tgt_vocab)
  assert sorted(os.listdir(cache.directory)) == ["tokens-k.lock"]
  os.makedirs(os.path.join(cache.directory, "tokens-k.tmp-999999"))  # a killed process's
  split, built = cache.split("k", lambda: text.stream_pairs(files), src_vocab, tgt_vocab)
  assert built and len(split) == len(SOURCES)
  assert sorted(os.listdir(cache.directory)) == ["tokens-k", "tokens-k.lock"]


def test_concurrent_builders_of_one_key_build_it_once(tmp_path):
  files = _files(tmp_path)
  src_vocab, tgt_vocab = _vocabs()
  built = []

  def build():
    cache = TokenCache(str(tmp_path / "cache"))
    built.append(cache.split("k", lambda: text.stream_pairs(files), src_vocab, tgt_vocab)[1])

  threads = [threading.Thread(target=build) for _ in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert sorted(built) == [False, False, False, True]


def test_a_damaged_cache_is_named_with_the_fix(tmp_path):
  files = _files(tmp_path)
  src_vocab, tgt_vocab = _vocabs()
  cache = TokenCache(str(tmp_path / "cache"))
  cache.split("k", lambda: text.stream_pairs(files), src_vocab, tgt_vocab)
  with open(os.path.join(cache.directory, "tokens-k", "target.ids"), "ab") as f:
    f.write(b"\0\0")
  with pytest.raises(ConfigError, match=r"tokens-k is damaged .*delete that directory"):
    cache.split("k", lambda: text.stream_pairs(files), src_vocab, tgt_vocab)


def test_stream_pairs_checks_the_files_as_read_split_does(tmp_path):
  files = _files(tmp_path)
  assert list(text.stream_pairs(files)) == list(zip(SOURCES, TARGETS, strict=True))
  short = _files(tmp_path, SOURCES, TARGETS[:-2])
  with pytest.raises(ConfigError, match=r"train\.xx has 70 lines, .*train\.yy has 68 lines"):
    list(text.stream_pairs(short))
  tsv = tmp_path / "t.tsv"
  tsv.write_text("a\tb\nc\n")
  with pytest.raises(ConfigError, match=r"t\.tsv:2: 1 tab-separated fields"):
    list(text.stream_pairs(str(tsv)))


def _run(path) -> runs.Workdir:
  os.makedirs(path)
  return runs.Workdir(str(path))


def _run_config(tmp_path, train: str):
  config = text_config.get_config()
  config.dataset.files.train = train
  config.dataset.files.validation = train
  config.dataset.files.test = train
  config.dataset.languages = "xx-yy"
  config.dataset.cache_dir = str(tmp_path / "cache")
  return config


def test_trials_share_the_cache_and_a_changed_file_rebuilds_it(tmp_path, caplog):
  files = _files(tmp_path)
  config = _run_config(tmp_path, files)
  caplog.set_level("INFO")
  first = prepare_data(config, _run(tmp_path / "run1"))
  second = prepare_data(config, _run(tmp_path / "run2"))
  built = [r.getMessage() for r in caplog.records if "cached" in r.getMessage()]
  assert [m.split(" the ")[0] for m in built] == ["Built and cached"] * 3 + ["Read cached"] * 3
  assert first.src_vocab == second.src_vocab and first.tgt_vocab == second.tgt_vocab
  _assert_same_split(second.splits["train"], first.splits["train"])
  assert second.splits["test"].source_texts == SOURCES  # evaluated splits keep their texts

  caplog.clear()
  _files(tmp_path, [s.replace("a", "b") for s in SOURCES])  # the same names, new contents
  third = prepare_data(config, _run(tmp_path / "run3"))
  built = [r.getMessage() for r in caplog.records if "cached" in r.getMessage()]
  assert [m.split(" the ")[0] for m in built] == ["Built and cached"] * 3
  assert "a" not in third.src_vocab.tokens
  assert len(os.listdir(cache_dir(config.dataset))) == 3 * 2 * 2  # 3 vocabularies, 2 splits


def test_the_cache_defaults_to_the_tfds_data_dir(tmp_path):
  config = text_config.get_config()
  config.dataset.data_dir = str(tmp_path)
  assert cache_dir(config.dataset) == os.path.join(str(tmp_path), "token_cache")


def test_builder_datasets_stream_and_fingerprint_their_stored_splits(dates_data_dir):
  loaded = datasets.open_dataset(named("dates", dates_data_dir)).load(("validation",))
  assert list(loaded) == ["validation"]
  streamed = list(datasets.open_dataset(named("dates", dates_data_dir)).stream("validation"))
  validation = loaded["validation"]
  assert streamed == list(zip(validation["source"], validation["target"], strict=True))
  prints = {
    s: datasets.open_dataset(named("dates", dates_data_dir)).fingerprint(s)
    for s in ("train", "test")
  }
  assert prints["train"] != prints["test"]
  assert prints["train"] == datasets.open_dataset(named("dates", dates_data_dir)).fingerprint(
    "train"
  )


def test_spm_learns_from_a_seeded_sample_of_a_large_corpus():
  rng = np.random.default_rng(0)
  words = [f"w{i}" for i in range(300)]
  texts = [" ".join(rng.choice(words, 8)) for _ in range(3000)]
  everything = Vocabulary.build(iter(texts), "spm", 200)
  assert Vocabulary.build(iter(texts), "spm", 200, sample=5000) == everything  # all fit
  sampled = Vocabulary.build(iter(texts), "spm", 200, sample=500)
  assert sampled == Vocabulary.build(iter(texts), "spm", 200, sample=500)
  assert sampled != everything


def test_reservoir_sample_is_uniform_ordered_and_keeps_short_streams_whole():
  texts = [str(i) for i in range(100)]
  assert reservoir_sample(iter(texts[:7]), 10, seed=0) == texts[:7]
  picks = np.zeros(100)
  for seed in range(400):
    sample = reservoir_sample(iter(texts), 10, seed)
    assert len(set(sample)) == 10 and sample == sorted(sample, key=int)
    picks[[int(t) for t in sample]] += 1
  # Each text is kept with probability 1/10: 40 of 400 draws, binomial sd 6.
  assert abs(picks[:50].mean() - 40) < 3 and abs(picks[50:].mean() - 40) < 3
  assert picks.min() > 15 and picks.max() < 65
