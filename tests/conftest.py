"""Test setup: CPU with 8 simulated devices, configured before jax is imported.

The suite runs in parallel (`pytest -n auto`, pytest-xdist): what several tests read (the
built datasets, a trained tiny run) is built once per session and shared by the workers,
and every process of the session (workers and the entry points tests start) shares one
JAX compilation cache, so a program compiled once is loaded elsewhere.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata

# Compiling dominates the suite's time on CPU, so the suite trades a little run time for
# faster compiles. LLVM's optimisation level 1 instead of 2: the tiny dates run compiled
# in 35 s instead of 48 s and trained as fast (level 0: 26.5 s, but training 2.7× slower).
# On jaxlib 0.10, XLA:CPU's loop emitters instead of its newer fusion emitters: the tiny
# run compiled in 13.3 s instead of 22.3 s and trained in 9.0 s instead of 8.6 s, and the
# cold suite of a clean clone took 13 min 36 s (853 tests) instead of 16 min 01 s (808) on
# a 2-core AMD EPYC. A newer jaxlib may drop the flag, which XLA refuses when it does not
# know it. The HLO the tests check is the same.
os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "")
  + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=1"
  + (
    " --xla_cpu_use_fusion_emitters=false" if metadata.version("jaxlib").startswith("0.10.") else ""
  )
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite's JAX compilation cache, shared by the workers and the entry points the tests
# start, and kept between runs in the checkout (`.cache/`, ignored by git): a run after a
# change compiles only the programs the change touched (a clean clone, as CI's, starts
# cold; so does `rm -rf .cache/jax_tests`). Every program is kept, the tests' many small
# ones too: reading one back takes milliseconds, compiling it ~70 ms on a slow CPU. JAX's
# own size cap is not used: it rescans the directory under one lock on every write.
os.environ["ATTN_RESEARCH_TEST_CACHE"] = os.environ.get("ATTN_RESEARCH_TEST_CACHE") or (
  os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "jax_tests")
)
os.environ["ATTN_RESEARCH_COMPILATION_CACHE"] = os.environ["ATTN_RESEARCH_TEST_CACHE"]
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["ATTN_RESEARCH_TEST_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", False)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_LIMIT_BYTES = 2 << 30  # a cache past this (old programs pile up) starts afresh


def pytest_configure(config) -> None:
  cache = os.environ["ATTN_RESEARCH_TEST_CACHE"]
  if hasattr(config, "workerinput") or not os.path.isdir(cache):
    return  # the session's first process checks it, before the workers start
  with os.scandir(cache) as entries:
    if sum(e.stat().st_size for e in entries if e.is_file()) > CACHE_LIMIT_BYTES:
      shutil.rmtree(cache, ignore_errors=True)


def shared_dir(tmp_path_factory, name: str, build: Callable[[str], None]) -> str:
  """Directory `name`, built by `build(path)` once per test session: the first worker to
  ask builds it under a lock while the others wait, then all read it."""
  from attn_research.data import locks

  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the session's directory, above each worker's own
  path, done = os.path.join(root, name), os.path.join(root, f"{name}.done")
  with locks.exclusive(os.path.join(root, f"{name}.lock")):
    if not os.path.exists(done):
      shutil.rmtree(path, ignore_errors=True)
      os.makedirs(path)
      build(path)
      open(done, "w").close()
  return path


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
  """`python -m module args…` from the repository root, output captured as text."""
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHONPATH": REPO},
  )


def run_entry_point(module: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
  """Entry point `module` run in this process as `python -m module args…` would run it
  (absl's flag parsing, the one error path, exit status and output), without paying a
  new interpreter's imports. Its flags are defined for the call and removed after it, so
  entry points that define the same flag names run one after another."""
  import contextlib
  import importlib
  import io

  from absl import app, flags
  from absl import logging as absl_logging

  from experiments import cli

  # Entry points that tests imported (to call a function of theirs) keep their flags
  # defined in this process: set them aside for the call, as a new process would not
  # have them, and put them back after it.
  held = [
    (owner, flag)
    for owner, defined in flags.FLAGS.flags_by_module_dict().items()
    if owner.startswith("experiments.")
    for flag in defined
  ]
  for _, flag in held:
    delattr(flags.FLAGS, flag.name)
  before, verbosity = set(flags.FLAGS), absl_logging.get_verbosity()
  was_parsed = flags.FLAGS.is_parsed()
  sys.modules.pop(module, None)  # run its module body: it defines the flags
  stdout, stderr, status = io.StringIO(), io.StringIO(), 0
  patch = pytest.MonkeyPatch()
  patch.setattr(sys, "argv", [module, *args])  # what flag defaults may read at import
  patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
  try:
    main = importlib.import_module(module).main
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      try:
        argv = cli.parse_flags([module, *args])
        cli.guarded(main, "rerun", argv)
      except app.UsageError as e:
        print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
        status = 1
      except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
          print(e.code, file=sys.stderr)
  finally:
    patch.undo()
    # The entry point's flags go (its own and the `--config.*` overrides absl made for
    # it); those of libraries it imported for the first time (array_record's, say) stay,
    # as their modules stay imported.
    libraries = {
      flag.name
      for owner, defined in flags.FLAGS.flags_by_module_dict().items()
      if not owner.startswith(("experiments.", "absl."))
      for flag in defined
    }
    for name in set(flags.FLAGS) - before - libraries:
      delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    for owner, flag in held:
      flags.FLAGS[flag.name] = flag
      flags.FLAGS.register_flag_by_module(owner, flag)
    if was_parsed:
      flags.FLAGS.mark_as_parsed()
    sys.modules.pop(module, None)
    absl_logging.set_verbosity(verbosity)
  return subprocess.CompletedProcess([module, *args], status, stdout.getvalue(), stderr.getvalue())


def tiny_train_command(workdir: str, data_dir: str) -> list[str]:
  """`experiments.train` of the tiny dates config (`tests/configs/tiny_dates.py`)."""
  return [
    sys.executable,
    "-m",
    "experiments.train",
    f"--config={os.path.join(REPO, 'tests', 'configs', 'tiny_dates.py')}",
    f"--workdir={workdir}",
    f"--config.dataset.data_dir={data_dir}",
  ]


def named(name: str, data_dir: str):
  """The `dataset` section of dataset `name` stored in `data_dir`."""
  from attn_research.data.datasets import DatasetConfig

  return DatasetConfig(name=name, data_dir=data_dir)


# The dates dataset as the tests build it: the full training split, small evaluation
# splits (every evaluation of every test decodes them).
DATES_SIZES = {"train": 45_000, "validation": 500, "test": 500}


@pytest.fixture(scope="session")
def dates_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding the dates dataset (`DATES_SIZES`), built once per session."""
  from attn_research.data import datasets
  from attn_research.data.datasets import dates

  def build(data_dir: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(dates, "SPLIT_SIZES", DATES_SIZES)
      datasets.open_dataset(named("dates", data_dir)).load()

  return shared_dir(tmp_path_factory, "tfds", build)


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding small `synthetic/copy` and `synthetic/reverse` datasets."""
  from attn_research.data import datasets
  from attn_research.data.datasets import synthetic

  def build(data_dir: str) -> None:
    sizes = {"train": 2000, "validation": 64, "test": 64, "test_long": 64}
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(synthetic, "SPLIT_SIZES", sizes)
      for task in ("copy", "reverse"):
        datasets.open_dataset(named(f"synthetic/{task}", data_dir)).load()

  return shared_dir(tmp_path_factory, "tfds_synthetic", build)


def tensorboard_events(directory: str):
  """Every `Event` proto of a directory's TensorBoard event files, files in time order
  (TFRecord framing: length, its CRC, the record, its CRC)."""
  import struct

  from tensorboardX.proto import event_pb2

  def when(name: str) -> int:  # events.out.tfevents.<seconds>.<host>
    return int(name.split(".")[3])

  for name in sorted(os.listdir(directory), key=when):
    with open(os.path.join(directory, name), "rb") as f:
      data = f.read()
    position = 0
    while position < len(data):
      (length,) = struct.unpack("<Q", data[position : position + 8])
      yield event_pb2.Event.FromString(data[position + 12 : position + 12 + length])
      position += 12 + length + 4


def tensorboard_scalars(directory: str) -> dict[tuple[str, int], float]:
  """(tag, step) → value of every scalar in a directory's TensorBoard event files, read
  as TensorBoard does: a `SessionLog.START` at step S hides the earlier values of steps
  ≥ S."""
  from tensorboardX.proto import event_pb2

  points = {}
  for event in tensorboard_events(directory):
    if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
      points = {key: v for key, v in points.items() if key[1] < event.step}
    for value in event.summary.value:
      if value.WhichOneof("value") == "simple_value":  # not the hparams summaries
        points[(value.tag, event.step)] = value.simple_value
  return points


def short_synthetic_config(data_dir: str, **train):
  """20 steps of a small model on the small synthetic/copy data (64 validation examples),
  one bucket shape, checkpoints at steps 10 and 20, no evaluation before the end."""
  from experiments.configs import synthetic

  config = synthetic.get_config("copy")
  config.dataset.data_dir = data_dir
  config.model.embedding_size, config.model.encoder.hidden_size = 16, 32
  config.data.source_buckets, config.data.target_buckets = (45,), (46,)
  config.train.update(
    {"num_steps": 20, "batch_size": 64, "log_every": 5, "eval_every": 1000, **train}
  )
  config.train.checkpoint_every = 10
  config.eval.update({"splits": ("validation",), "num_heatmaps": 0, "batch_size": 64})
  return config


def tiny_config(data_dir: str, **train):
  """The tiny dates config reading `data_dir`, with `train.*` overrides."""
  from tests.configs import tiny_dates

  config = tiny_dates.get_config()
  config.dataset.data_dir = data_dir
  for key, value in train.items():
    setattr(config.train, key, value)
  return config


@pytest.fixture(scope="session")
def tiny_run(dates_data_dir, tmp_path_factory):
  """A finished 300-step run of the tiny dates config, trained once per session and read
  by every test that needs a trained run: (workdir, result)."""
  from attn_research import runs
  from attn_research.training import trainer

  def build(workdir: str) -> None:
    trainer.train_and_evaluate(tiny_config(dates_data_dir), workdir)

  workdir = shared_dir(tmp_path_factory, "tiny", build)
  return workdir, runs.read_json(os.path.join(workdir, runs.RESULT))


def plain_cell_loop(cell_cls, weights, projected, carry, mask):
  """`cell_cls.loop` as autodiff would differentiate it: a plain `lax.scan` of `recur`
  (the reference for the hand-written loop gradients)."""

  def body(carry, inputs):
    px, m = inputs
    new = cell_cls.recur(weights, carry, px)
    if m is None:
      return new, new[-1]
    new = tuple(jnp.where(m, n, o) for n, o in zip(new, carry, strict=True))
    return new, jnp.where(m, new[-1], 0.0)

  carry, outputs = jax.lax.scan(body, carry, (projected, mask))
  return outputs, carry


def tiny_seq2seq(**overrides):
  """A small `Seq2Seq` for model and decoding tests. `overrides` name a `ModelConfig`
  field (`embedding_size=12`) or a field of its encoder, decoder or attention config as
  `<section>_<field>` (`decoder_type="gnmt"`, `attention_window=3`)."""
  from attn_research.attention import AttentionConfig
  from attn_research.model import DecoderConfig, EncoderConfig, ModelConfig, Seq2Seq

  config = dict(src_vocab_size=23, tgt_vocab_size=17, embedding_size=8, dropout=0.0, bridge="last")
  sections = dict(
    encoder=dict(type="bi", cell="lstm", num_layers=2, hidden_size=12),
    decoder=dict(type="luong", num_layers=2, input_feeding=False),
    attention=dict(score="general", alignment="global", window=2),
  )
  for name, value in overrides.items():
    section, _, field = name.partition("_")
    if section in sections:
      sections[section][field] = value
    else:
      config[name] = value
  return Seq2Seq(
    ModelConfig(
      **config,
      encoder=EncoderConfig(**sections["encoder"]),
      decoder=DecoderConfig(**sections["decoder"]),
      attention=AttentionConfig(**sections["attention"]),
    )
  )


# variant → (score, alignment, per seed: (test BLEU, test ppl)); BLEU and ppl rank differently.
VARIANTS = {
  "a": ("general", "global", [(20.0, 3.0), (21.5, 3.2), (19.0, 2.9)]),
  "b": ("dot", "local_p", [(30.0, 2.5), (28.0, 2.6), (31.0, 2.4)]),
  "c": ("dot", "global", [(10.0, 1.5)]),
}
NAMES = {
  v: f"model.attention.score={score}, model.attention.alignment={alignment}"
  for v, (score, alignment, _) in VARIANTS.items()
}


def _leaderboard_config(score: str, alignment: str, seed: int) -> dict:
  return {
    "seed": seed,
    "dataset": {"name": "dates", "data_dir": f"/data/{seed}"},  # ignored by the grouping
    "model": {"attention": {"score": score, "alignment": alignment, "window": 10}},
    "eval": {"splits": ["validation", "test"]},
  }


def _split_metrics(bleu: float, ppl: float, with_aer: bool) -> dict:
  metrics = {
    "loss": float(np.log(ppl)),
    "ppl": ppl,
    "exact_match": bleu / 100,
    "bleu": bleu,
    "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0",
    "tokenized_bleu": bleu + 1,
    "chrf": bleu + 10,
    "num_examples": 64,
    "bleu_by_length": [{"min_length": 1, "max_length": 10, "num_examples": 64, "bleu": bleu}],
  }
  return {**metrics, "aer": 1 - bleu / 100} if with_aer else metrics


def _write(path, name: str, data: dict) -> None:
  path.mkdir(parents=True, exist_ok=True)
  (path / name).write_text(json.dumps(data))


@pytest.fixture
def finished_sweep(tmp_path):
  """A sweep directory of finished runs for leaderboards: 3 variants (3, 3 and 1 seeds; b
  nested one level deeper), 1 unfinished, 1 failed and 1 diverged run."""
  root = tmp_path / "sweep"
  for variant, (score, alignment, seeds) in VARIANTS.items():
    for seed, (bleu, ppl) in enumerate(seeds):
      run = root / ("nested" if variant == "b" else "") / f"{variant}_s{seed}"
      _write(
        run,
        "result.json",
        {
          "status": "completed",
          "config": _leaderboard_config(score, alignment, seed),
          "num_params": 1000 + ord(variant),
          "wall_seconds": 60.0 + seed,
          "train_tokens_per_second": 5000.0 + 10 * seed,
          "metrics": {
            "validation": _split_metrics(bleu - 1, ppl + 0.1, False),
            "test": _split_metrics(bleu, ppl, variant == "a"),
          },
        },
      )
      (run / "bleu_by_length.test.png").write_bytes(b"\x89PNG")
      _write(run / "heatmaps" / "test", "00000.png", {})  # not a run: below a run directory
      _write(run / "heatmaps" / "test", "config.json", {})
  _write(root / "d_s0", "config.json", _leaderboard_config("location", "global", 0))
  _write(root / "e_s0", "failed.json", {"error": "ConfigError: window <b>too</b> large"})
  _write(
    root / "f_s0",
    "result.json",
    {"status": "diverged", "step": 40, "error": "the training loss is nan at step 40; lower"},
  )
  return root


# variant (its attention score) → the share of the test sentences each seed gets right.
TESTED = {"general": (0.50, 0.52), "dot": (0.49, 0.51), "location": (0.70, 0.72)}
TESTED_SENTENCES = 300


@pytest.fixture
def tested_sweep(tmp_path):
  """Runs with per-sentence exact-match statistics (`statistics.test.npz`), 2 seeds per
  variant: `dot` no different from `general`, `location` clearly better."""
  from attn_research.evaluation import significance

  root = tmp_path / "tested"
  references = [f"reference {i}" for i in range(TESTED_SENTENCES)]
  for score, shares in TESTED.items():
    for seed, share in enumerate(shares):
      rng = np.random.default_rng([seed, ord(score[0])])
      right = rng.permutation(TESTED_SENTENCES) < round(share * TESTED_SENTENCES)
      rows = np.stack([right, np.ones_like(right)], axis=1).astype(np.float64)
      run = root / f"{score}_s{seed}"
      metrics = {"exact_match": float(right.mean()), "ppl": 2.0 - right.mean()}
      _write(
        run,
        "result.json",
        {
          "status": "completed",
          "config": _leaderboard_config(score, "global", seed),
          "metrics": {"test": metrics},
        },
      )
      significance.save(
        str(run / "statistics.test.npz"),
        significance.SentenceStatistics(
          significance.fingerprint(references), {"exact_match": rows}
        ),
      )
  return root
