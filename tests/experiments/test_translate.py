import json
import os
import subprocess
import sys

from attn_research.data import datasets
from tests.conftest import REPO, named, run_entry_point


def _translate(workdir: str, stdin: str, *flags: str) -> subprocess.CompletedProcess:
  """In this process (`run_entry_point`); the first test runs the command itself."""
  return run_entry_point("experiments.translate", f"--workdir={workdir}", *flags, stdin=stdin)


def _translate_process(workdir: str, stdin: str, *flags: str) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-m", "experiments.translate", f"--workdir={workdir}", *flags],
    cwd=REPO,
    input=stdin,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )


def test_translates_stdin_to_stdout_in_order_with_attention(tiny_run, tmp_path):
  workdir, _ = tiny_run
  with open(f"{workdir}/hypotheses.test.txt", encoding="utf-8") as f:
    expected = f.read().splitlines()[:3]
  with open(f"{workdir}/config.json") as f:
    data_dir = json.load(f)["dataset"]["data_dir"]
  sources = datasets.open_dataset(named("dates", data_dir)).load()["test"]["source"][:3]
  attention = tmp_path / "attention.jsonl"
  stdin = "\r\n".join([sources[0], "", sources[1], sources[2]]) + "\r\n"
  result = _translate_process(
    workdir, stdin, "--checkpoint=latest", f"--attention={attention}", "--config.decode.beam_size=0"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.splitlines() == [expected[0], "", expected[1], expected[2]]
  assert "at step 300 (latest)" in result.stderr
  records = [json.loads(line) for line in attention.read_text().splitlines()]
  assert [r["index"] for r in records] == [0, 1, 2, 3]
  assert records[0]["translation"] == expected[0] and records[1]["attention"] == []
  assert len(records[2]["attention"]) == len(records[2]["target_tokens"])


def test_bad_input_gets_one_line(tiny_run, tmp_path):
  workdir, _ = tiny_run
  latin1 = tmp_path / "in.txt"
  latin1.write_bytes(b"ok\n\xe9t\xe9\n")
  result = _translate(workdir, "", f"--input={latin1}", "--checkpoint=latest")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(f"error: {latin1}:2: byte 1")
  result = _translate(workdir, "x\n", "--config.decode.beam_size=-1")
  assert result.returncode == 2 and "decode.beam_size=-1" in result.stderr
  result = _translate(str(tmp_path), "x\n")
  assert result.returncode == 2 and "holds no run" in result.stderr


def test_n_best_lines_and_heatmaps(tiny_run, tmp_path):
  workdir, _ = tiny_run
  attention, heatmaps = tmp_path / "attention.jsonl", tmp_path / "maps"
  result = _translate(
    workdir,
    "May 3, 2001\n\n12/05/1999\n",
    "--checkpoint=latest",
    "--config.decode.beam_size=3",
    "--n_best=2",
    f"--attention={attention}",
    f"--heatmaps={heatmaps}",
  )
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert len(lines) == 6 and lines[2:4] == ["", ""] and lines[0] != lines[1]
  records = [json.loads(line) for line in attention.read_text().splitlines()]
  for record, pair in zip(records, (lines[0:2], lines[2:4], lines[4:6]), strict=True):
    assert [h["translation"] for h in record["n_best"]] == pair
  scores = [h["score"] for h in records[0]["n_best"]]
  assert scores == sorted(scores, reverse=True)
  assert sorted(os.listdir(heatmaps)) == ["000001.png", "000003.png"]
  result = _translate(workdir, "x\n", "--n_best=2", "--config.decode.beam_size=0")
  assert result.returncode == 2 and "--config.decode.beam_size=2 or more" in result.stderr
