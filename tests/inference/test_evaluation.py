import json
import os
import re
import subprocess
import sys

import pytest

from attn_research.errors import ConfigError
from attn_research.inference.evaluation import evaluate_run
from tests.conftest import DATES_SIZES, REPO, tiny_config


def test_greedy_evaluation_reproduces_the_run_and_beam_search_runs(tiny_run, dates_data_dir):
  workdir, trained = tiny_run
  config = tiny_config(dates_data_dir)
  result, hypotheses = evaluate_run(workdir, config, "test", checkpoint="latest")
  assert result["step"] == 300 and len(hypotheses) == DATES_SIZES["test"]
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
  assert beam["decode"]["beam_size"] == 2 and len(beam_hyps) == DATES_SIZES["test"]
  # Beam search optimises the model score, not exact match: it stays close to greedy.
  assert abs(beam["metrics"]["exact_match"] - result["metrics"]["exact_match"]) < 0.05


def test_overrides_that_change_the_model_are_refused(tiny_run, dates_data_dir):
  workdir, _ = tiny_run
  config = tiny_config(dates_data_dir)
  config.model.encoder.hidden_size = 64
  with pytest.raises(ConfigError, match=r"model\.encoder\.hidden_size: 32 → 64"):
    evaluate_run(workdir, config, "test")


def test_cli_writes_hypotheses_and_prints_metrics_of_an_ensemble(
  tiny_run, dates_data_dir, tmp_path
):
  """A run ensembled with itself (the CLI's --workdirs) scores as the run alone."""
  workdir, trained = tiny_run
  output = tmp_path / "hyps.txt"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.evaluate",
      f"--workdirs={workdir},{workdir}",
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
  # Library INFO logs (orbax's, absl-formatted "I1127 12:00:00…") stay off by default.
  assert not re.search(r"^I\d{4} ", result.stderr, re.MULTILINE), result.stderr[:2000]
  result = json.loads(result.stdout.strip().splitlines()[-1])
  assert result["workdirs"] == [workdir, workdir] and result["steps"] == [300, 300]
  alone = trained["metrics"]["validation"]
  assert result["metrics"] == {
    **alone,
    "ppl": result["metrics"]["ppl"],
    "loss": result["metrics"]["loss"],
  }
  assert result["metrics"]["ppl"] == pytest.approx(alone["ppl"], rel=1e-5)
  lines = output.read_text().splitlines()
  assert len(lines) == DATES_SIZES["test"]


def test_forced_decoding_aer_matches_an_independent_computation(synthetic_data_dir, tmp_path):
  """AER from the evaluator equals attention argmax over each reference token (NumPy)."""
  import jax
  import numpy as np

  from attn_research.data.vocab import BOS_ID
  from attn_research.runs import Workdir
  from attn_research.training import parallel, setup
  from attn_research.training.data import prepare_data
  from attn_research.training.evaluator import Evaluator
  from experiments.configs import synthetic

  config = synthetic.get_config("reverse")
  config.dataset.data_dir = synthetic_data_dir
  config.model.encoder.hidden_size = 16
  config.model.embedding_size = 8
  config.eval.batch_size = 64
  mesh = parallel.make_mesh()
  data = prepare_data(config, Workdir(str(tmp_path)))
  model, state = setup.build(config, data, mesh)
  evaluation = Evaluator(model, mesh, data, config.eval, config.decode).run(
    state.params, "test", num_attention=3
  )

  # One unbucketed batch padded to the longest example (the evaluator uses buckets).
  split, gold = data.splits["test"], data.gold["test"]
  n = len(split)
  src = np.zeros((n, max(map(len, split.sources))), np.int32)
  tgt_in = np.zeros((n, max(map(len, split.targets)) + 1), np.int32)
  for i, (s, t) in enumerate(zip(split.sources, split.targets, strict=True)):
    src[i, : len(s)] = s
    tgt_in[i, : len(t) + 1] = [BOS_ID, *t]
  _, weights = jax.jit(model.apply)({"params": state.params}, src, src > 0, tgt_in)
  weights = np.asarray(jax.device_get(weights))
  rows = []
  for i in range(n):
    best = weights[i].argmax(-1)[: len(split.targets[i])]
    predicted = {(int(s), t) for t, s in enumerate(best)}
    sure = {tuple(map(int, p.split("-"))) for p in gold["alignment"][i].split()}
    rows.append([2 * len(predicted & sure), len(predicted) + len(sure)])  # P = S for reverse
  hits, total = np.sum(rows, axis=0)
  assert evaluation.metrics["aer"] == pytest.approx(1 - hits / total, abs=1e-9)
  np.testing.assert_array_equal(evaluation.statistics.metrics["aer"], rows)  # for bootstrap
  assert sorted(evaluation.attention) == [0, 1, 2]
  tokens, weights = evaluation.attention[0]
  assert "</s>" not in tokens[:-1] and len(tokens) <= data.buckets.target[-1]
  assert weights.shape[0] == len(tokens) and weights.shape[1] in data.buckets.source
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_none_state_has_no_aer(synthetic_data_dir, tmp_path):
  from attn_research.runs import Workdir
  from attn_research.training import parallel, setup
  from attn_research.training.data import prepare_data
  from attn_research.training.evaluator import Evaluator
  from experiments.configs import synthetic

  config = synthetic.get_config("copy")
  config.dataset.data_dir = synthetic_data_dir
  config.model.decoder.type = "none_state"
  config.model.encoder.hidden_size = 16
  config.eval.batch_size = 64
  mesh = parallel.make_mesh()
  data = prepare_data(config, Workdir(str(tmp_path)))
  model, state = setup.build(config, data, mesh)
  evaluator = Evaluator(model, mesh, data, config.eval, config.decode)
  assert not evaluator.attentional
  assert "aer" not in evaluator(state.params, "test_long")
