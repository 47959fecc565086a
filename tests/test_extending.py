"""The worked examples of docs/extending.md, run and checked against NumPy.

Every ```python block whose first line is `# example: NAME` runs in a fresh module; what it
registers is undone after the test (the registries' entries are swapped for copies), so
no other test sees it.
"""

import dataclasses
import functools
import os
import re
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_research.attention import NORMALIZERS, SCORES, Attention, alignments
from attn_research.model import Seq2Seq
from attn_research.registry import Registry
from attn_research.training.optimizers import SCHEDULES
from experiments.tables import TABLES
from experiments.variants import FAMILIES
from tests.conftest import REPO

PAGE = os.path.join(REPO, "docs", "extending.md")
REGISTRIES = (*FAMILIES, TABLES)  # every family `experiments.variants` lists, and the tables
_BLOCK = re.compile(r"^```python\n# example: (\S+)\n(.*?)^```$", re.M | re.S)


def examples() -> dict[str, tuple[int, str]]:
  """Name → (line of its first code line, code) of every runnable block of the page."""
  with open(PAGE, encoding="utf-8") as f:
    page = f.read()
  found = {}
  for match in _BLOCK.finditer(page):
    assert match[1] not in found, f"two examples named {match[1]!r} in {PAGE}"
    found[match[1]] = (page.count("\n", 0, match.start(2)) + 1, match[2])
  return found


def isolate(patch: pytest.MonkeyPatch) -> None:
  """Gives every registry a copy of its entries until `patch` is undone: `Registry` has no
  way to unregister, and a name left behind would join other tests' parametrizations. A
  registration into any other registry fails, as it would not be undone."""
  for registry in REGISTRIES:
    patch.setattr(registry, "_entries", dict(registry._entries))
  register = Registry.register

  def checked(self: Registry, name: str):
    assert any(self is r for r in REGISTRIES), f"add the {self.family} registry to REGISTRIES"
    return register(self, name)

  patch.setattr(Registry, "register", checked)


@pytest.fixture
def run_example(monkeypatch):
  """Runs an example of the page in a fresh module and returns that module; registrations
  into any family are undone after the test."""
  isolate(monkeypatch)
  monkeypatch.chdir(REPO)  # config paths such as experiments/configs/dates.py

  def run(name: str) -> types.ModuleType:
    line, code = examples()[name]
    module = types.ModuleType(f"extending_example_{name}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # Blank lines keep the page's line numbers in tracebacks.
    exec(compile("\n" * (line - 1) + code, PAGE, "exec"), module.__dict__)
    return module

  return run


def _masked_softmax(energies: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """float64 softmax over the last axis's True positions; 0 elsewhere and on empty rows."""
  e = np.where(mask, energies, -np.inf)
  top = np.max(e, axis=-1, keepdims=True)
  p = np.where(mask, np.exp(e - np.where(np.isfinite(top), top, 0.0)), 0.0)
  total = p.sum(-1, keepdims=True)
  return p / np.where(total > 0, total, 1.0)


def test_the_page_has_one_example_per_family():
  assert set(examples()) == {
    "score",
    "alignment",
    "normalizer",
    "decoder",
    "schedule",
    "dataset",
    "table",
  }


def test_examples_leave_the_registries_as_they_were():
  with pytest.MonkeyPatch.context() as patch:
    isolate(patch)
    patch.chdir(REPO)
    exec(compile(examples()["table"][1], PAGE, "exec"), {})
    assert "vaswani2017_scaling" in TABLES
    with pytest.raises(AssertionError, match="colour"):  # a registry it could not undo
      Registry("colour", "model.colour").register("red")(object)
  assert "vaswani2017_scaling" not in TABLES


def test_score(run_example, monkeypatch):
  ex = run_example("score")
  assert "diag_general" in SCORES
  w = np.asarray(ex.params["params"]["score"]["w_a"], np.float64)
  query, values = ex.query.astype(np.float64), ex.values.astype(np.float64)
  energies = np.einsum("bqd,d,bsd->bqs", query, w, values)
  weights = _masked_softmax(energies, ex.mask[:, None, :])
  np.testing.assert_allclose(ex.weights, weights, atol=1e-6)
  np.testing.assert_allclose(ex.context, weights @ values, atol=1e-5)
  assert np.all(np.asarray(ex.weights)[1, :, 2:] == 0.0)  # padding: exactly 0

  # Windows gather from what `prepare` returns: gathered or masked, the same weights.
  layer = Attention(dataclasses.replace(ex.config, alignment="local_m", window=1), 6)
  positions = np.broadcast_to(np.arange(3), (2, 3))

  def attend(module):
    return module(ex.query, module.prepare(ex.values, ex.mask), positions)[1]

  got = {}
  for gather in (True, False):  # read while tracing: one compilation each
    monkeypatch.setattr(alignments, "gathers_window", lambda src_len, window, g=gather: g)
    got[gather] = np.asarray(jax.jit(functools.partial(layer.apply, method=attend))(ex.params))
  np.testing.assert_allclose(got[True], got[False], atol=1e-6)
  window = np.abs(np.arange(5)[None, :] - np.arange(3)[:, None]) <= 1  # [q, s], p_t = t
  reference = _masked_softmax(energies, ex.mask[:, None, :] & window[None])
  np.testing.assert_allclose(got[True], reference, atol=1e-6)


def test_alignment(run_example):
  ex = run_example("alignment")
  k = ex.config.window
  query, values = ex.query.astype(np.float64), ex.values.astype(np.float64)
  energies = np.einsum("bqd,bsd->bqs", query, values)
  read = np.arange(6)[None, None, :] < ex.positions[..., None] + k
  weights = _masked_softmax(energies, ex.mask[:, None, :] & read)
  np.testing.assert_allclose(ex.weights, weights, atol=1e-6)
  np.testing.assert_allclose(ex.context, weights @ values, atol=1e-5)
  got = np.asarray(ex.weights)
  assert np.all(got[0, 0, k:] == 0.0) and np.all(got[0, 0, :k] > 0)  # step 0 reads k
  assert np.all(got[1, :, 3:] == 0.0)  # never the padding
  np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)


def test_normalizer(run_example):
  ex = run_example("normalizer")
  assert "softmax_t2" in NORMALIZERS
  z, mask = np.asarray(ex.energies, np.float64), np.asarray(ex.mask)
  weights = _masked_softmax(z / 2.0, mask)
  got = np.asarray(ex.weights)
  np.testing.assert_allclose(got, weights, atol=1e-6)
  np.testing.assert_allclose(got[:2].sum(-1), 1.0, atol=1e-6)
  assert np.all(got[~mask] == 0.0) and np.all(got[2] == 0.0)
  assert got[0].max() < _masked_softmax(z, mask)[0].max()  # flatter than at temperature 1

  # The attention layer takes it from the config.
  layer = Attention(ex.config, query_size=4)
  rng = np.random.default_rng(1)
  query = rng.normal(size=(2, 3, 4)).astype(np.float32)
  values = rng.normal(size=(2, 5, 4)).astype(np.float32)
  src_mask = np.arange(5) < np.array([[5], [2]])

  def attend(module):
    return module(query, module.prepare(values, src_mask))[1]

  @jax.jit
  def run():
    params = layer.init(jax.random.key(0), method=attend)
    return params, layer.apply(params, method=attend)

  params, weights = run()
  w_a = np.asarray(params["params"]["score"]["w_a"]["kernel"], np.float64)  # general: h W_aᵀ h̄
  energies = np.einsum("bqd,bsd->bqs", query, values @ w_a)
  np.testing.assert_allclose(weights, _masked_softmax(energies / 2.0, src_mask[:, None]), atol=1e-6)


def test_decoder(run_example):
  ex = run_example("decoder")
  assert ex.logits.shape == (2, 5, 15) and ex.weights.shape == (2, 5, 7)

  # Numbers: the example's model with parameters drawn in NumPy (nothing compiled to draw
  # them), teacher forcing against step-by-step decoding from one encoding.
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, 0.3, s.shape), s.dtype), ex.params)
  h = rng.normal(size=(2, 12)).astype(np.float32)  # a top decoder state

  def encode_and_force(module, src, src_mask, tgt_in, h):
    memory, state = module.encode(src, src_mask)
    logits, weights = module.decoder(memory, state, tgt_in, False)  # all steps at once
    positions = jnp.zeros(h.shape[:1], jnp.int32)
    h_tilde, _, _ = module.decoder._attend(memory, h, positions, None, False)
    return memory, state, logits, weights, h_tilde

  memory, state, logits, weights, h_tilde = jax.jit(
    functools.partial(ex.model.apply, method=encode_and_force)
  )(params, ex.src, ex.src_mask, ex.tgt_in, h)
  step = jax.jit(functools.partial(ex.model.apply, method=Seq2Seq.decode_step))
  for t in range(ex.tgt_in.shape[1]):  # greedy and beam search's path
    state, step_logits, _ = step(params, memory, state, ex.tgt_in[:, t])
    np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-4)
  weights = np.asarray(weights)
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  assert np.all(weights[1, :, 4:] == 0.0)

  # tanh(W_c [c_t; h_t]) + h_t, c_t from the `general` score over the encoder states.
  p = jax.tree.map(lambda x: np.asarray(x, np.float64), params["params"]["decoder"])
  states, h = np.asarray(memory.values, np.float64), h.astype(np.float64)
  energies = np.einsum("bd,bsd->bs", h, states @ p["attention"]["score"]["w_a"]["kernel"])
  context = np.einsum("bs,bsd->bd", _masked_softmax(energies, ex.src_mask), states)
  reference = np.tanh(np.concatenate([context, h], axis=-1) @ p["w_c"]["kernel"]) + h
  np.testing.assert_allclose(h_tilde, reference, atol=1e-5)


def test_dataset(run_example, tmp_path):
  from attn_research.runs import Workdir
  from attn_research.training import experiment
  from attn_research.training.data import prepare_data
  from experiments.configs import base

  ex = run_example("dataset")
  assert ex.dataset.split_names() == ["train", "validation", "test"]
  assert sorted(ex.loaded) == ["test", "validation"]
  for split, size in (("validation", 20), ("test", 20)):
    sources, targets = ex.loaded[split]["source"], ex.loaded[split]["target"]
    assert len(sources) == len(targets) == size
    assert all(t.split() == s.split()[::-1] for s, t in zip(sources, targets, strict=True))
  assert len(list(ex.dataset.stream("train"))) == 200
  assert ex.dataset.fingerprint("train") == ex.dataset.fingerprint("train")
  assert ex.dataset.fingerprint("train") != ex.dataset.fingerprint("test")

  config = base.get_config()
  config.dataset.update({"name": "reversed_words", "data_dir": str(tmp_path)})
  config.data.update({"source_buckets": (8,), "target_buckets": (8,)})
  experiment.validate(config, 1)
  (tmp_path / "run").mkdir()
  data = prepare_data(config, Workdir(str(tmp_path / "run")), note=lambda message: None)
  assert {len(data.splits[s]) for s in ("validation", "test")} == {20}
  assert len(data.splits["train"]) == 200
  assert set(ex.WORDS) <= set(data.src_vocab.tokens) and set(ex.WORDS) <= set(data.tgt_vocab.tokens)


def test_table(run_example, tmp_path):
  from attn_research.config import files as config_files
  from attn_research.training import experiment
  from experiments.tables import table as tables

  ex = run_example("table")
  assert {row: [t.name for t in trials] for row, trials in ex.trials.items()} == {
    row: [f"{row}_seed={seed}" for seed in range(3)] for row in ("dot", "scaled_dot")
  }
  base = config_files.load_config(ex.DATES)
  for row, trials in ex.trials.items():
    for trial in trials:
      assert trial.overrides["model.attention.score"] == row
      assert trial.overrides["train.num_steps"] == ex.STEPS
      experiment.validate(tables.trial_config(base, trial), 1)
  markdown = tables.render(ex.TABLE, "tiny", ex.trials, str(tmp_path)).markdown
  assert markdown.count("not run yet") == 6
  assert "no test: a row has no finished run" in markdown


def test_schedule(run_example):
  ex = run_example("schedule")
  assert "inverse_sqrt" in SCHEDULES
  steps = np.array([1, 50, 100, 400, 900], np.float64)  # step 0 counts as 1
  expected = 1e-3 * np.minimum(steps / 100, np.sqrt(100 / steps))
  np.testing.assert_allclose(ex.rates, expected, rtol=1e-6)
