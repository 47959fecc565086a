import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )


def test_unknown_config_key_is_rejected_by_name(tmp_path):
  result = _run(
    "experiments.train",
    "--config=experiments/configs/dates.py",
    f"--workdir={tmp_path}",
    "--config.model.attention.scor=dot",
  )
  assert result.returncode != 0
  assert "does not exist" in result.stderr and "--config.model.attention.scor" in result.stderr
  assert "Traceback" not in result.stderr
  assert not os.listdir(tmp_path)


def test_unknown_variant_lists_the_valid_ones(tmp_path):
  result = _run(
    "experiments.train",
    "--config=experiments/configs/dates.py",
    f"--workdir={tmp_path}/run",
    "--config.model.decoder.type=bahdanauu",
  )
  assert result.returncode != 0
  assert "Unknown decoder 'bahdanauu' for model.decoder.type. Valid names: luong, bahdanau" in (
    result.stderr
  )


def test_variants_lists_every_family():
  result = _run("experiments.variants")
  assert result.returncode == 0, result.stderr
  lines = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
  assert set(lines["model.attention.score"].split()) == {
    "dot",
    "scaled_dot",
    "general",
    "scaled_general",
    "concat",
    "additive",
    "normed_additive",
    "mul",
    "cosine",
    "location",
  }
  assert lines["model.attention.alignment"].split() == ["global", "local_m", "local_p"]
  assert lines["model.decoder.type"].split() == [
    "luong",
    "bahdanau",
    "gnmt",
    "none_state",
    "none_input",
  ]
  assert lines["model.encoder.type"].split() == ["uni", "bi", "gnmt"]
  assert lines["model.encoder.cell"].split() == ["lstm", "gru"]
  assert lines["model.bridge"].split() == ["zero", "last", "dense"]
  assert {
    "model.attention.alignment",
    "model.encoder.type",
    "model.encoder.cell",
    "dataset.name",
  } <= lines.keys()
