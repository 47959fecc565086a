import json
import os
import shutil
import subprocess
import sys

import pytest

from experiments import cli
from tests.conftest import DATES_SIZES, REPO, run_entry_point, run_module


def test_unknown_config_key_is_rejected_by_name(tmp_path):
  result = run_entry_point(
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
  result = run_entry_point(
    "experiments.train",
    "--config=experiments/configs/dates.py",
    f"--workdir={tmp_path}/run",
    "--config.model.decoder.type=bahdanauu",
  )
  assert result.returncode != 0
  assert result.stderr == (
    "error: model.decoder.type='bahdanauu' must be one of luong, bahdanau, gnmt, none_state, "
    "none_input.\n"
  )


def test_variants_lists_every_family():
  result = run_module("experiments.variants")
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
  assert lines["model.attention.alignment"].split() == [
    "global",
    "local_m",
    "local_p",
    "monotonic",
    "mocha",
  ]
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
  assert lines["train.optimizer"].split() == ["adam", "sgd", "adadelta", "adagrad"]
  assert lines["train.schedule"].split() == ["constant", "cosine", "halving", "plateau"]
  assert lines["train.scheduled_sampling"].split() == [
    "none",
    "linear",
    "exponential",
    "inverse_sigmoid",
  ]
  assert {
    "model.attention.alignment",
    "model.encoder.type",
    "model.encoder.cell",
    "dataset.name",
  } <= lines.keys()


def test_variants_lists_datasets_with_their_configs():
  result = run_entry_point("experiments.variants")
  lines = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
  names = lines["dataset.name"].split()
  assert {"dates", "synthetic/reverse", "debian_l10n/en-de", "iwslt15/en-vi"} <= set(names)
  assert {"wmt14_translate/en-de", "wmt14_translate/fr-en", "wmt15_translate/de-en"} <= set(names)
  assert lines["dataset.vocab"].split() == ["char", "word", "moses", "spm", "spm_bpe"]


def test_data_command_describes_a_built_dataset(synthetic_data_dir):
  result = run_entry_point(
    "experiments.data", "--dataset=synthetic/reverse", f"--data_dir={synthetic_data_dir}"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  out = result.stdout
  assert "synthetic/reverse: 2,192 pairs" in out
  assert "  train: 2,000 pairs" in out and "  test_long: 64 pairs" in out
  first = out.split("  test_long: 64 pairs")[1].splitlines()
  assert "max 45" in first[1]  # test_long lengths (31–45 letters), words column


def test_data_command_errors_name_the_fix(tmp_path, dates_data_dir):
  result = run_entry_point(
    "experiments.data", "--dataset=dates", f"--data_dir={dates_data_dir}", "--fetch"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "note: dates has nothing to fetch; building it." in result.stderr
  assert f"dates: {sum(DATES_SIZES.values()):,} pairs" in result.stdout
  result = run_entry_point(
    "experiments.data", "--dataset=debian_l10n/en-xx", f"--data_dir={tmp_path}"
  )
  assert "needs one of the configs debian_l10n/en-de" in result.stderr
  result = run_entry_point(
    "experiments.data", "--dataset=debian_l10n/en-de", f"--data_dir={tmp_path}"
  )
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "apt-get download libreoffice-l10n-de=4:7.4.7-1+deb12u14" in result.stderr
  assert not os.path.exists(tmp_path / "debian_l10n" / "en-de" / "1.0.0" / "dataset_info.json")


def test_compare_tables_runs_and_plots_bleu_by_length(tiny_run, tmp_path):
  workdir, trained = tiny_run
  output = tmp_path / "by_length.png"
  result = run_module(
    "experiments.compare", f"--workdirs={workdir},{workdir}", "--split=test", f"--output={output}"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  rows = [[c.strip() for c in line.strip("|").split("|")] for line in result.stdout.splitlines()]
  assert rows[0][:3] == ["run", "test.bleu", "test.tokenized_bleu"]
  assert rows[2][0].endswith("(luong · global · general)") and len(rows) == 2 + 2 + 1
  assert rows[2][1] == f"{trained['metrics']['test']['bleu']:.2f}"
  assert rows[2][4] == f"{trained['metrics']['test']['exact_match']:.4f}"
  assert rows[0][-2:] == ["bleu vs first [95%]", "p"]  # paired bootstrap against the first
  assert rows[2][-2:] == ["baseline", "—"] and rows[3][-2:] == ["+0.00 [+0.00, +0.00]", "1.000"]
  assert output.read_bytes()[:4] == b"\x89PNG"
  missing = run_entry_point("experiments.compare", f"--workdirs={tmp_path}")
  assert missing.returncode != 0 and "holds no completed run" in missing.stderr


def test_deterministic_gpu_ops_are_asked_for_once_and_cpu_accepts_them(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  cli.deterministic_gpu_ops()
  cli.deterministic_gpu_ops()
  assert os.environ["XLA_FLAGS"] == (
    "--xla_force_host_platform_device_count=8 --xla_gpu_deterministic_ops=true"
  )
  check = subprocess.run(
    [sys.executable, "-c", "import jax; print(float(jax.numpy.ones(3).sum()))"],
    capture_output=True,
    text=True,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert check.stdout.strip() == "3.0", check.stderr[-1000:]


def test_compare_warns_in_one_line_when_runs_differ_in_jax(tiny_run, tmp_path):
  workdir, trained = tiny_run
  other = tmp_path / "other_jax"
  shutil.copytree(workdir, other)
  result = json.loads((other / "result.json").read_text())
  result["provenance"]["versions"]["jax"] = "0.0.1"
  (other / "result.json").write_text(json.dumps(result))
  compared = run_entry_point("experiments.compare", f"--workdirs={workdir},{other}")
  assert compared.returncode == 0, compared.stderr[-2000:]
  warning = f"warning: the runs differ in jax (0.0.1, {trained['provenance']['versions']['jax']})"
  assert [line for line in compared.stderr.splitlines() if "warning" in line] == [
    f"{warning}: part of their difference may come from that, not from the variants."
  ]
  alone = run_entry_point("experiments.compare", f"--workdirs={workdir},{workdir}")
  assert "warning" not in alone.stderr


@pytest.mark.skipif(
  not any(os.path.exists(os.path.join(d, cli.TCMALLOC)) for d in cli.LIBRARY_DIRS),
  reason="Debian's libtcmalloc-minimal4 is not installed (.ci/run installs it)",
)
@pytest.mark.parametrize("setting,loaded", [(None, True), ("0", False)])
def test_entry_points_preload_tcmalloc_unless_turned_off(setting, loaded):
  code = "from experiments import cli; cli.run(lambda argv: print('tcmalloc' in open('/proc/self/maps').read()))"
  env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", cli.TCMALLOC_VARIABLE)}
  if setting is not None:
    env[cli.TCMALLOC_VARIABLE] = setting
  out = subprocess.run(
    [sys.executable, "-c", code],
    cwd=REPO,
    env={**env, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == str(loaded)
