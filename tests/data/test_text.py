import gzip
import json

import pytest

from attn_research.data import datasets
from attn_research.data.datasets import text
from attn_research.errors import ConfigError
from attn_research.evaluation.alignment import parse_pharaoh
from attn_research.training import experiment
from experiments.configs import text as text_config
from tests.conftest import named, short_synthetic_config, tiny_config


def _write(path, data: bytes) -> str:
  path.write_bytes(data)
  return str(path)


def test_reads_pairs_with_crlf_bom_gzip_and_empty_lines(tmp_path):
  src = _write(tmp_path / "a.en", "\ufeffHello there\r\n\r\n  spaced  \r\nlast".encode())
  tgt = _write(tmp_path / "a.de.gz", gzip.compress(b"Hallo da\n\n  Abstand  \nletzte\n"))
  split = text.read_split(f"{src},{tgt}")
  assert split == {
    "source": ["Hello there", "", "  spaced  ", "last"],
    "target": ["Hallo da", "", "  Abstand  ", "letzte"],
  }


def test_reads_a_tsv_with_alignments(tmp_path):
  tsv = _write(tmp_path / "t.tsv", b"a b\tx y\t0-0 1?1\nc\tz\t0-0\nd\te\n")
  split = text.read_split(tsv)
  assert split["source"] == ["a b", "c", "d"] and split["target"] == ["x y", "z", "e"]
  assert split["alignment"] == ["0-0", "0-0", ""]
  assert [parse_pharaoh(a) for a in split["possible_alignment"]] == [
    {(0, 0), (1, 1)},
    {(0, 0)},
    set(),
  ]


@pytest.mark.parametrize(
  "files, message",
  [
    ({"a.en": b"1\n2\n3\n", "a.de": b"1\n2\n"}, r"a\.en has 3 lines, .*a\.de has 2 lines"),
    ({"a.en": b"ok\n", "a.de": b"ok\n\xe9t\xe9\n"}, r"a\.de:2: byte 1 of the line is not UTF-8"),
    ({"a.tsv": b"a\tb\nno tab here\n"}, r"a\.tsv:2: 1 tab-separated fields"),
    ({"a.en.gz": b"not gzip", "a.de": b"x\n"}, r"a\.en\.gz cannot be read .*recompress"),
  ],
)
def test_bad_files_get_one_line_naming_file_and_fix(tmp_path, files, message):
  paths = [_write(tmp_path / name, data) for name, data in files.items()]
  with pytest.raises(ConfigError, match=message) as error:
    text.read_split(",".join(paths))
  assert "\n" not in str(error.value)


def _text_config(train: str, **files):
  config = text_config.get_config()
  config.dataset.files.train = train
  for split, value in files.items():
    config.dataset.files[split] = value
  return config


def test_config_checks_name_the_missing_file_or_key(tmp_path):
  pair = ",".join(_write(tmp_path / f"a.{lang}", b"x\n") for lang in ("en", "de"))
  experiment.validate(_text_config(pair, validation=pair, test=pair), 1)
  with pytest.raises(
    ConfigError, match=r"dataset\.files\.train=.*names /no/such\.en, which is not"
  ):
    experiment.validate(_text_config("/no/such.en,/no/such.de"), 1)
  with pytest.raises(ConfigError, match=r"needs dataset\.files\.test=SRC,TGT .*drop test"):
    experiment.validate(_text_config(pair, validation=pair), 1)
  with pytest.raises(ConfigError, match="must be TSV, SRC,TGT or SRC,TGT,ALIGN"):
    experiment.validate(_text_config(f"{pair},{pair}"), 1)
  other = tiny_config("")
  other.dataset.files.train = pair
  with pytest.raises(ConfigError, match=r"read only by dataset\.name=text, not dates"):
    experiment.validate(other, 1)
  bad_languages = _text_config(pair, validation=pair, test=pair)
  bad_languages.dataset.languages = "english-german"
  with pytest.raises(ConfigError, match=r"dataset\.languages='english-german' must be"):
    experiment.validate(bad_languages, 1)


def test_export_round_trips_a_dataset_with_gold_alignments(synthetic_data_dir, tmp_path):
  original = datasets.open_dataset(named("synthetic/reverse", synthetic_data_dir)).load()
  for split, features in original.items():
    text.export(split, features, str(tmp_path), ("source", "target"))
  config = text_config.get_config(str(tmp_path))
  assert config.eval.splits == ("validation", "test")
  assert config.dataset.files.train.endswith(
    f"train.source,{tmp_path}/train.target,{tmp_path}/train.align"
  )
  read = datasets.open_dataset(config.dataset).load()
  long = f"{tmp_path}/test_long.source,{tmp_path}/test_long.target,{tmp_path}/test_long.align"
  read["test_long"] = text.read_split(long)  # a split `dataset.files` has no key for
  assert read.keys() == original.keys()
  for split, features in original.items():
    assert read[split]["source"] == features["source"]
    assert read[split]["target"] == features["target"]
    for kind in ("alignment", "possible_alignment"):
      assert [parse_pharaoh(a) for a in read[split][kind]] == [
        parse_pharaoh(a) for a in features[kind]
      ]


def test_export_writes_possible_links_apart_and_reads_them_back(tmp_path):
  features = {
    "source": ["a a b"],
    "target": ["a a b"],
    "alignment": ["0-0 1-1 2-2"],
    "possible_alignment": ["0-0 1-0 0-1 1-1 2-2"],
  }
  paths = text.export("test", features, str(tmp_path), ("source", "target"))
  assert (tmp_path / "test.align").read_text() == "0-0 1-1 2-2 1?0 0?1\n"
  read = text.read_split(",".join(paths))
  assert read["alignment"] == ["0-0 1-1 2-2"]
  assert parse_pharaoh(read["possible_alignment"][0]) == parse_pharaoh(
    features["possible_alignment"][0]
  )


def test_export_refuses_a_line_break_inside_a_sentence(tmp_path):
  with pytest.raises(ConfigError, match="train pair 2 \\(de\\) holds a line break"):
    text.export(
      "train", {"source": ["a", "b"], "target": ["x", "y\nz"]}, str(tmp_path), ("en", "de")
    )


def test_the_same_data_through_text_trains_the_same(synthetic_data_dir, tmp_path):
  """synthetic/copy, and synthetic/copy exported and read back as `text` (with its gold
  alignments): equal losses at every log step, and equal final metrics."""
  from attn_research.training import trainer

  for split, features in (
    datasets.open_dataset(named("synthetic/copy", synthetic_data_dir)).load().items()
  ):
    text.export(split, features, str(tmp_path / "corpus"), ("source", "target"))
  results, losses = [], []
  for name in ("synthetic", "text"):
    config = short_synthetic_config(synthetic_data_dir)
    if name == "text":
      config.dataset.name = "text"
      config.dataset.data_dir = ""
      config.dataset.files = text_config.get_config(str(tmp_path / "corpus")).dataset.files
    workdir = tmp_path / name
    results.append(trainer.train_and_evaluate(config, str(workdir)))
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses.append([(m["step"], m["train_loss"]) for m in lines if "train_loss" in m])
  assert len(losses[0]) == 4 and losses[0] == losses[1]
  assert results[0]["metrics"] == results[1]["metrics"]
  assert "aer" in results[1]["metrics"]["validation"]  # the gold alignments came through
