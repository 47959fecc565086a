import numpy as np
import pytest

from attn_research.data import datasets
from attn_research.errors import ConfigError
from attn_research.inference.translation import load_translator
from tests.conftest import named, tiny_config


@pytest.fixture(scope="module")
def translator(tiny_run, dates_data_dir):
  workdir, _ = tiny_run
  translator, steps = load_translator(
    [workdir], tiny_config(dates_data_dir), "latest", keep_attention=True
  )
  assert steps == [300]
  return translator


def _hypotheses(workdir: str) -> list[str]:
  with open(f"{workdir}/hypotheses.test.txt", encoding="utf-8") as f:
    return f.read().splitlines()


def test_translations_equal_the_runs_test_hypotheses_in_input_order(
  translator, tiny_run, dates_data_dir
):
  """The final evaluation decoded the test split at step 300 in other batches."""
  workdir, _ = tiny_run
  sources = datasets.open_dataset(named("dates", dates_data_dir)).load()["test"]["source"][:150]
  lines = [*sources[:70], "", *sources[70:]]
  out = list(translator.translate(lines, chunk_size=64))  # three chunks, one batch each
  expected = _hypotheses(workdir)[:150]
  assert [t.text for t in out] == [*expected[:70], "", *expected[70:]]
  assert out[70].source_tokens == [] and out[70].target_tokens == []
  for t in out[:3]:
    assert t.attention.shape == (len(t.target_tokens), len(t.source_tokens))
    np.testing.assert_allclose(t.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert t.target_tokens[-1] == "</s>"


def test_a_line_longer_than_the_buckets_is_decoded_in_a_larger_shape(translator):
  longest = translator.vocabs.buckets.source[-1]
  line = "Saturday, September 21, 1974 " * 5  # 145 characters: 4 × the 40-character bucket
  [long] = translator.translate_chunk([line])
  assert len(long.source_tokens) == len(line) > 3 * longest
  assert long.attention.shape[1] == len(line)
  translator.truncate = True
  try:
    [cut] = translator.translate_chunk([line])
  finally:
    translator.truncate = False
  assert len(cut.source_tokens) == longest == cut.attention.shape[1]


def test_location_attention_refuses_a_longer_line_naming_the_option(translator, monkeypatch):
  monkeypatch.setattr(translator, "_location", True)
  with pytest.raises(ConfigError, match=r"Line 2 has 145 source tokens.*pass --truncate"):
    translator.translate_chunk(["ok", "Saturday, September 21, 1974 " * 5])


def test_an_ensemble_of_one_model_twice_translates_as_that_model(
  translator, tiny_run, dates_data_dir
):
  """Greedy here; `tests/decoding/test_ensemble.py` checks beam search too."""
  workdir, _ = tiny_run
  sources = datasets.open_dataset(named("dates", dates_data_dir)).load()["test"]["source"][:40]
  config = tiny_config(dates_data_dir)
  ensemble, steps = load_translator([workdir, workdir], config, "latest", keep_attention=True)
  assert steps == [300, 300]
  alone = translator.translate_chunk(sources)
  together = ensemble.translate_chunk(sources)
  assert [t.text for t in together] == [t.text for t in alone]
  np.testing.assert_allclose(together[0].attention.sum(axis=1), 1.0, rtol=1e-5)


def test_an_ensemble_refuses_another_target_vocabulary(tiny_run, dates_data_dir, tmp_path):
  import json
  import shutil

  workdir, _ = tiny_run
  other = tmp_path / "other"
  shutil.copytree(workdir, other)
  vocab = json.loads((other / "vocab.target.json").read_text())
  vocab["tokens"] = [*vocab["tokens"], "extra"]
  (other / "vocab.target.json").write_text(json.dumps(vocab))
  with pytest.raises(ConfigError, match=r"has another target vocabulary \(\d+ tokens\) than"):
    load_translator([workdir, str(other)], tiny_config(dates_data_dir), "latest")
