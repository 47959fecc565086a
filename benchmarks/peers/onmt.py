r"""attn_research against OpenNMT-py, side by side: the same model, data and batch.

  python -m benchmarks.peers.onmt --onmt_venv=/path/to/onmt-venv \
      --out=benchmarks/results/peers_onmt_cpu.json

For each workload it exports our training and test splits as text, tokenised exactly as
our vocabulary does (ids mapped back to tokens; pairs our buckets drop are left out),
with our vocabularies, so that both toolkits train on the same token sequences. Then, in
`--rounds` interleaved rounds, it trains the same model in each (`onmt_train` in its own
virtual environment; `experiments.train` here) for `--steps` steps and reads their
per-interval target tokens/s: OpenNMT-py's log lines and our `metrics.jsonl`. The first
interval (warm-up; our compiles) is left out and reported apart. Last, beam search
(k = 5, batch 64) over the test split with each toolkit's last model: `onmt_translate
-report_time` and our compiled beam search in float32 and in bfloat16 (same float32
model), timed with and without its compiles.

OpenNMT-py is never a dependency of the package: see benchmarks/peers/README.md.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from absl import app, flags

from attn_research.config import files as config_files
from attn_research.config import overrides as config_overrides

_ONMT_VENV = flags.DEFINE_string("onmt_venv", None, "Virtual environment with OpenNMT-py 3.5.1.")
_OUT = flags.DEFINE_string("out", None, "Where to write the JSON results.")
_ROOT = flags.DEFINE_string("root", "/tmp/peers_onmt", "Scratch directory for data and runs.")
_WORKLOADS = flags.DEFINE_list("workloads", ["reverse", "l10n"], "Workloads to run.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved training rounds per workload.")
_BEAM = flags.DEFINE_bool("beam", True, "Also time beam search on the test split.")
flags.mark_flags_as_required(["onmt_venv"])

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEAM_SIZE, BEAM_BATCH = 5, 64
BEAM_DTYPES = ("float32", "bfloat16")  # our decoding dtypes; OpenNMT-py runs float32


# Each workload: our config and overrides, the matching OpenNMT-py options, and how long
# a round trains (steps, and steps per reported interval).
WORKLOADS = {
  "reverse": {
    "config": "experiments/configs/synthetic.py:reverse",
    "overrides": {
      "model.embedding_size": 128,
      "model.dropout": 0.3,
      "model.encoder.num_layers": 2,
      "model.encoder.hidden_size": 256,
      "model.decoder.num_layers": 2,
      "train.batch_size": 64,
      "train.learning_rate": 0.001,
      "train.schedule": "constant",
      "train.warmup_steps": 0,
      "train.grad_clip": 5.0,
    },
    "onmt": {
      "enc_layers": 2,
      "dec_layers": 2,
      "enc_hid_size": 256,
      "dec_hid_size": 256,
      "word_vec_size": 128,
      "dropout": [0.3],
      "learning_rate": 0.001,
    },
    "steps": 300,
    "interval": 25,
  },
  "l10n": {
    "config": "experiments/configs/debian_l10n.py:en-de",
    "overrides": {"train.schedule": "constant", "train.warmup_steps": 0},
    "onmt": {
      "enc_layers": 1,
      "dec_layers": 1,
      "enc_hid_size": 512,
      "dec_hid_size": 512,
      "word_vec_size": 256,
      "dropout": [0.2],
      "learning_rate": 0.002,
    },
    "steps": 100,
    "interval": 10,
  },
}

# Options both toolkits share whatever the workload: a bidirectional LSTM encoder whose
# directions split the hidden size, a Luong decoder with input feeding and global
# `general` attention, Adam, clipping at global norm 5, sentence batches of 64.
ONMT_COMMON = {
  "encoder_type": "brnn",
  "decoder_type": "rnn",
  "rnn_type": "LSTM",
  "global_attention": "general",
  "input_feed": 1,
  "batch_size": 64,
  "batch_type": "sents",
  "optim": "adam",
  "adam_beta2": 0.999,
  "max_grad_norm": 5,
  "param_init": 0.1,
  "world_size": 1,
  "gpu_ranks": [],
  "num_workers": 0,
  "seed": 0,
}


def _config(workload: dict):

  config = config_files.load_config(os.path.join(REPO, workload["config"]))
  return config_overrides.apply_overrides(config, workload["overrides"])


def export(name: str, workload: dict, directory: str) -> dict:
  """Builds our vocabularies and writes the splits as token text for OpenNMT-py.

  Returns:
    paths and counts: the vocabulary run, `train`/`test` source and target files, the
    number of training pairs and test sentences, and the largest target bucket.
  """
  from attn_research import runs
  from attn_research.data.pipeline import TrainBatches
  from attn_research.training.data import prepare_data

  config = _config(workload)
  vocab_run = os.path.join(directory, "vocab")
  os.makedirs(vocab_run, exist_ok=True)
  data = prepare_data(config, runs.Workdir(vocab_run))
  kept = TrainBatches(
    data.splits["train"],
    data.buckets,
    config.train.batch_size,
    seed=0,
    max_words=config.data.max_train_words,
  ).kept
  splits = {"train": kept, "test": range(len(data.splits["test"]))}
  files = {}
  for split, indices in splits.items():
    for side, vocab in (("src", data.src_vocab), ("tgt", data.tgt_vocab)):
      sequences = getattr(data.splits[split], "sources" if side == "src" else "targets")
      path = os.path.join(directory, f"{split}.{side}")
      with open(path, "w") as f:
        for i in indices:
          f.write(" ".join(vocab.tokens[t] for t in sequences[i]) + "\n")
      files[f"{split}.{side}"] = path
  for side, vocab in (("src", data.src_vocab), ("tgt", data.tgt_vocab)):
    path = os.path.join(directory, f"vocab.{side}")
    with open(path, "w") as f:
      f.write("".join(f"{t}\n" for t in vocab.tokens[4:]))  # OpenNMT-py adds its specials
    files[f"vocab.{side}"] = path
  print(f"[{name}] exported {len(kept)} training pairs, {len(splits['test'])} test sentences")
  return {
    "vocab_run": vocab_run,
    "files": files,
    "train_pairs": len(kept),
    "test_sentences": len(splits["test"]),
    "max_target": data.buckets.target[-1],
  }


def _steady(rates: list[float]) -> float:
  return statistics.median(rates[1:]) if len(rates) > 1 else rates[0]


def train_onmt(workload: dict, exported: dict, directory: str) -> dict:
  """One `onmt_train` run; per-interval target tokens/s from its log."""
  import yaml

  run_dir = os.path.join(directory, "onmt")
  shutil.rmtree(run_dir, ignore_errors=True)
  os.makedirs(run_dir)
  files = exported["files"]
  options = {
    **ONMT_COMMON,
    **workload["onmt"],
    "save_data": os.path.join(run_dir, "data"),
    "src_vocab": files["vocab.src"],
    "tgt_vocab": files["vocab.tgt"],
    "src_vocab_size": 1 << 20,
    "tgt_vocab_size": 1 << 20,
    "src_seq_length": 100000,
    "tgt_seq_length": 100000,
    "data": {"corpus_1": {"path_src": files["train.src"], "path_tgt": files["train.tgt"]}},
    "train_steps": workload["steps"],
    "valid_steps": 10 * workload["steps"],
    "save_checkpoint_steps": workload["steps"],
    "save_model": os.path.join(run_dir, "model"),
    "report_every": workload["interval"],
  }
  config_path = os.path.join(run_dir, "config.yaml")
  with open(config_path, "w") as f:
    yaml.safe_dump(options, f)
  started = time.perf_counter()
  out = subprocess.run(
    [os.path.join(_ONMT_VENV.value, "bin", "onmt_train"), "-config", config_path],
    capture_output=True,
    text=True,
    check=False,
  )
  wall = time.perf_counter() - started
  log = out.stdout + out.stderr
  if out.returncode:
    raise RuntimeError(f"onmt_train failed:\n{log[-3000:]}")
  rates = [float(m.group(2)) for m in re.finditer(r"(\d+)/\s*(\d+) tok/s", log)]
  return {
    "wall_seconds": wall,
    "interval_tokens_per_second": rates,
    "warmup_tokens_per_second": rates[0],
    "steady_tokens_per_second": _steady(rates),
    "model": os.path.join(run_dir, f"model_step_{workload['steps']}.pt"),
  }


def train_ours(workload: dict, exported: dict, directory: str) -> dict:
  """One `experiments.train` run; per-interval target tokens/s from `metrics.jsonl`."""
  from attn_research import runs

  workdir = os.path.join(directory, "ours")
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(workdir)
  for name in (runs.SOURCE_VOCAB, runs.TARGET_VOCAB):  # the vocabularies the export used
    shutil.copy(os.path.join(exported["vocab_run"], name), workdir)
  steps = workload["steps"]
  overrides = {
    **workload["overrides"],
    "train.num_steps": steps,
    "train.log_every": workload["interval"],
    "train.eval_every": steps,
    "train.checkpoint_every": steps,
  }
  command = [
    sys.executable,
    "-m",
    "experiments.train",
    f"--config={os.path.join(REPO, workload['config'])}",
    f"--workdir={workdir}",
    "--config.eval.splits=('validation',)",
    *(f"--config.{k}={v}" for k, v in overrides.items()),
  ]
  started = time.perf_counter()
  out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
  wall = time.perf_counter() - started
  if out.returncode:
    raise RuntimeError(f"experiments.train failed:\n{out.stderr[-3000:]}")
  with open(os.path.join(workdir, runs.METRICS)) as f:
    records = [json.loads(line) for line in f]
  rates = [r["tokens_per_second"] for r in records if r.get("tokens_per_second")]
  result = runs.read_run(workdir).result
  return {
    "wall_seconds": wall,
    "interval_tokens_per_second": rates,
    "warmup_tokens_per_second": rates[0],
    "steady_tokens_per_second": _steady(rates),
    "compile_seconds": result.get("compile_seconds"),
    "train_shapes": result.get("train_shapes"),
    "compilations": result.get("compilations"),
    "cache_hits": result.get("cache_hits"),
    "workdir": workdir,
  }


def beam_onmt(model: str, exported: dict, directory: str) -> dict:
  """`onmt_translate` with beam 5 over the test split; its own translation time."""
  output = os.path.join(directory, "onmt_test.hyp")
  command = [
    os.path.join(_ONMT_VENV.value, "bin", "onmt_translate"),
    "-model",
    model,
    "-src",
    exported["files"]["test.src"],
    "-output",
    output,
    "-beam_size",
    str(BEAM_SIZE),
    "-batch_size",
    str(BEAM_BATCH),
    "-batch_type",
    "sents",
    "-max_length",
    str(exported["max_target"]),
    "-report_time",
  ]
  env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
  started = time.perf_counter()
  out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
  wall = time.perf_counter() - started
  log = out.stdout + out.stderr
  if out.returncode:
    raise RuntimeError(f"onmt_translate failed:\n{log[-3000:]}")
  seconds = float(re.search(r"Total translation time \(s\): ([\d.]+)", log).group(1))
  with open(output) as f:
    tokens = sum(len(line.split()) + 1 for line in f)  # with </s>, as ours counts
  n = exported["test_sentences"]
  return {
    "seconds": seconds,
    "process_wall_seconds": wall,
    "sentences_per_second": n / seconds,
    "tokens_per_second": tokens / seconds,
  }


def beam_ours(workload: dict, workdir: str, exported: dict, dtype: str) -> dict:
  """Our beam search over the test split from the run's last checkpoint, computed in
  `dtype`: the first pass (compiling each batch shape) and a second, compiled pass."""
  import jax
  import numpy as np

  from attn_research import runs
  from attn_research.config import fields
  from attn_research.data.pipeline import decode_batches
  from attn_research.data.vocab import EOS_ID
  from attn_research.decoding.config import DecodeConfig
  from attn_research.training import experiment, parallel, setup
  from attn_research.training.checkpointing import Checkpointer
  from attn_research.training.data import prepare_data
  from attn_research.training.evaluator import make_decoder

  config = experiment.complete(runs.read_json(os.path.join(workdir, runs.CONFIG)))
  config.decode.beam_size = BEAM_SIZE
  mesh = parallel.make_mesh()
  run = runs.Workdir(workdir, writer=False)
  data = prepare_data(config, run, eval_splits=("test",))
  model, state = setup.build(config, data, mesh)
  checkpointer = Checkpointer(run.file(runs.CHECKPOINTS), keep=1)
  _, state, _ = setup.restore_newest(checkpointer, state, print, fix="")
  checkpointer.close()
  decode = jax.jit(
    make_decoder(model, fields.parse(DecodeConfig, config.decode), data.buckets.target[-1], dtype)
  )
  batches = decode_batches(data.splits["test"], data.buckets, BEAM_BATCH, "test")

  def one_pass() -> tuple[float, int]:
    started, tokens = time.perf_counter(), 0
    for host_batch in batches:
      batch = parallel.shard_batch(host_batch, mesh)
      decoded, _ = jax.device_get(decode(state.params, batch["src"], batch["src_mask"]))
      for row in decoded[host_batch["index"] >= 0]:
        ends = np.flatnonzero(row == EOS_ID)
        tokens += int(ends[0]) + 1 if len(ends) else len(row)
    return time.perf_counter() - started, tokens

  first, _ = one_pass()
  compiled, tokens = one_pass()
  n = exported["test_sentences"]
  return {
    "dtype": dtype,
    "seconds_compiled": compiled,
    "seconds_with_compiles": first,
    "shapes": len({b["src"].shape for b in batches}),
    "sentences_per_second": n / compiled,
    "sentences_per_second_with_compiles": n / first,
    "tokens_per_second": tokens / compiled,
  }


def _peer_versions() -> dict:
  python = os.path.join(_ONMT_VENV.value, "bin", "python")
  code = "import onmt, torch; print(onmt.__version__, torch.__version__)"
  onmt, torch = subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.split()
  return {"opennmt_py": onmt, "torch": torch, "torch_threads": "default"}


def run_workload(name: str) -> dict:
  workload = WORKLOADS[name]
  directory = os.path.join(_ROOT.value, name)
  os.makedirs(directory, exist_ok=True)
  exported = export(name, workload, directory)
  rounds = []
  for r in range(_ROUNDS.value):
    onmt = train_onmt(workload, exported, directory)
    ours = train_ours(workload, exported, directory)
    rounds.append({"onmt": onmt, "ours": ours})
    print(
      f"[{name}] round {r + 1}: OpenNMT-py {onmt['steady_tokens_per_second']:,.0f} tok/s, "
      f"attn_research {ours['steady_tokens_per_second']:,.0f} tok/s"
    )
  onmt_rate = statistics.median(r["onmt"]["steady_tokens_per_second"] for r in rounds)
  ours_rate = statistics.median(r["ours"]["steady_tokens_per_second"] for r in rounds)
  result = {
    "workload": name,
    "config": workload["config"],
    "overrides": workload["overrides"],
    "onmt_options": {**ONMT_COMMON, **workload["onmt"]},
    "steps_per_round": workload["steps"],
    "train_pairs": exported["train_pairs"],
    "rounds": rounds,
    "onmt_tokens_per_second": onmt_rate,
    "ours_tokens_per_second": ours_rate,
    "train_ratio": ours_rate / onmt_rate,
  }
  if _BEAM.value:
    onmt_beam = beam_onmt(rounds[-1]["onmt"]["model"], exported, directory)
    ours = {}
    for dtype in BEAM_DTYPES:  # the float32-trained model, decoded in each dtype
      ours[dtype] = beam_ours(workload, rounds[-1]["ours"]["workdir"], exported, dtype)
      ours[dtype]["ratio_compiled"] = (
        ours[dtype]["sentences_per_second"] / onmt_beam["sentences_per_second"]
      )
      ours[dtype]["ratio_with_compiles"] = (
        ours[dtype]["sentences_per_second_with_compiles"] / onmt_beam["sentences_per_second"]
      )
    result["beam"] = {
      "beam_size": BEAM_SIZE,
      "batch_size": BEAM_BATCH,
      "test_sentences": exported["test_sentences"],
      "onmt": onmt_beam,
      "ours": ours,
    }
  summary = {k: v for k, v in result.items() if k.endswith(("ratio", "_per_second"))}
  print(f"[{name}] {json.dumps(summary)}")
  for dtype, beam in result.get("beam", {}).get("ours", {}).items():
    print(
      f"[{name}] beam: OpenNMT-py (float32) {result['beam']['onmt']['seconds']:.1f} s, "
      f"attn_research ({dtype}) {beam['seconds_compiled']:.1f} s compiled / "
      f"{beam['seconds_with_compiles']:.1f} s with compiles"
    )
  return result


def main(argv: list[str]) -> None:
  del argv
  import jax

  from benchmarks.report import write_report

  results = [run_workload(name) for name in _WORKLOADS.value]
  write_report(
    _OUT.value,
    results,
    date=time.strftime("%Y-%m-%d"),
    machine=f"{os.cpu_count()} CPU cores",
    versions={"jax": jax.__version__, **_peer_versions()},
  )


if __name__ == "__main__":
  app.run(main)
