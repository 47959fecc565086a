import pytest

from tests.conftest import run_module


def test_describes_your_own_files(tmp_path):
  (tmp_path / "train.en").write_text("a b c\nd e\n\nf\n")
  (tmp_path / "train.de").write_text("x\ny z\nw\nv\n")
  (tmp_path / "test.tsv").write_text("a\tb\nc d\te\n")
  result = run_module(
    "experiments.data",
    "--dataset=text",
    f"--files=train={tmp_path}/train.en,{tmp_path}/train.de",
    f"--files=test={tmp_path}/test.tsv",
    "--examples=1",
  )
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0] == "text: 6 pairs"
  assert "  train: 4 pairs" in lines and "  test: 2 pairs" in lines
  assert "    [0] a b c" in lines and "        → x" in lines


@pytest.mark.parametrize(
  "dataset, files, message",
  [
    ("dates", ["train=a,b"], "--files is read only with --dataset=text, not dates"),
    ("text", ["dev=a,b"], "SPLIT one of train, validation, test"),
    ("text", ["train=/no/such.en,/no/such.de"], "names /no/such.en, which is not a file"),
  ],
)
def test_bad_files_are_refused_in_one_line(dataset, files, message):
  result = run_module("experiments.data", f"--dataset={dataset}", *(f"--files={f}" for f in files))
  assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1]
