import json
import os
import subprocess
import sys

import pytest

from attn_research.errors import ConfigError
from attn_research.training.evaluation import evaluate_run
from tests.conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_greedy_evaluation_reproduces_the_run_and_beam_search_runs(tiny_run, dates_data_dir):
  workdir, trained = tiny_run
  config = tiny_config(dates_data_dir)
  result, hypotheses = evaluate_run(workdir, config, "test", checkpoint="latest")
  assert result["step"] == 300 and len(hypotheses) == 5000
  assert result["metrics"] == trained["metrics"]["test"]  # same checkpoint, same decoding

  # "best" is the state with the lowest validation perplexity among the evaluations.
  best, _ = evaluate_run(workdir, config, "validation", checkpoint="best")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [json.loads(line) for line in f if "validation_ppl" in line]
  lowest = min(evals, key=lambda r: r["validation_ppl"])
  assert best["step"] == lowest["step"]
  assert best["metrics"]["ppl"] == pytest.approx(lowest["validation_ppl"], rel=1e-6)
  config.decode.beam_size = 2
  config.decode.length_penalty = 0.6
  beam, beam_hyps = evaluate_run(workdir, config, "test", checkpoint="latest")
  assert beam["decode"]["beam_size"] == 2 and len(beam_hyps) == 5000
  # Beam search optimises the model score, not exact match: it stays close to greedy.
  assert abs(beam["metrics"]["exact_match"] - result["metrics"]["exact_match"]) < 0.05


def test_overrides_that_change_the_model_are_refused(tiny_run, dates_data_dir):
  workdir, _ = tiny_run
  config = tiny_config(dates_data_dir)
  config.model.encoder.hidden_size = 64
  with pytest.raises(ConfigError, match=r"model\.encoder\.hidden_size: 32 → 64"):
    evaluate_run(workdir, config, "test")


def test_cli_writes_hypotheses_and_prints_metrics(tiny_run, dates_data_dir, tmp_path):
  workdir, trained = tiny_run
  output = tmp_path / "hyps.txt"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.evaluate",
      f"--workdir={workdir}",
      f"--config.dataset.data_dir={dates_data_dir}",
      "--split=validation",
      f"--output={output}",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr[-2000:]
  metrics = json.loads(result.stdout.strip().splitlines()[-1])
  assert metrics["metrics"] == trained["metrics"]["validation"]
  lines = output.read_text().splitlines()
  assert len(lines) == 5000
