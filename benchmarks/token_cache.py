r"""Encode once, stream: two trials on a synthetic multi-million-pair text corpus.

  python -m benchmarks.token_cache --out=benchmarks/results/token_cache_cpu.json

Writes a synthetic parallel corpus of `--pairs` training pairs (Zipf-distributed words
of 30,000 types, 3–40 words a sentence; the target is the source's words, each mapped to
another type, in reverse order) as `train.source`/`train.target` plus 500-pair validation
files, then runs `experiments.train` twice on it through `experiments/configs/text.py`
with a small model (`--steps` steps, seeds 0 and 1) sharing one token cache. The first
trial builds the vocabularies and the training split's token ids; the second reads them.

For each trial it reports: the seconds from process start to the end of the cache work
(the trainer's note that the training split's ids are ready) and to the first training step (the first `metrics.jsonl`
record, written at step 1), the whole trial's seconds, and its peak resident memory,
anonymous and file-backed (mostly shared libraries) apart, sampled from `/proc` every 0.1 s.
"""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
from absl import app, flags

_OUT = flags.DEFINE_string("out", None, "Where to write the JSON results.")
_ROOT = flags.DEFINE_string("root", "/tmp/token_cache_bench", "Scratch directory.")
_PAIRS = flags.DEFINE_integer("pairs", 5_000_000, "Training pairs of the synthetic corpus.")
_STEPS = flags.DEFINE_integer("steps", 20, "Training steps of each trial.")
_VOCAB = flags.DEFINE_string("vocab", "spm", "dataset.vocab of the trials.")

TYPES, MIN_WORDS, MAX_WORDS = 30_000, 3, 40
_CHUNK = 250_000  # lines generated at a time
_READY = "training split's token ids"  # the note once the training split is ready
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _words(rng: np.random.Generator) -> np.ndarray:
  """`[TYPES, 12]` uint8: distinct lowercase words of 2–10 letters, each followed by a space
  and zero padding."""
  table = np.zeros((TYPES, 12), np.uint8)
  seen = set()
  for i in range(TYPES):
    while True:
      word = bytes(rng.integers(97, 123, rng.integers(2, 11)).astype(np.uint8))
      if word not in seen:
        break
    seen.add(word)
    table[i, : len(word) + 1] = np.frombuffer(word + b" ", np.uint8)
  return table


def _lines(table: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> bytes:
  """Lines of the words `ids` (`lengths` words each), vectorised."""
  rows = table[ids]
  text = rows[rows != 0]
  ends = np.cumsum((table[ids] != 0).sum(1))[np.cumsum(lengths) - 1] - 1
  text[ends] = ord("\n")  # each line's last space
  return text.tobytes()


def write_corpus(directory: str, pairs: int) -> dict:
  """The synthetic corpus as `{train,validation}.{source,target}`; returns its sizes."""
  rng = np.random.default_rng(0)
  table = _words(rng)
  mapping = rng.permutation(TYPES)
  zipf = 1.0 / np.arange(1, TYPES + 1)
  zipf /= zipf.sum()
  os.makedirs(directory, exist_ok=True)
  sizes = {}
  for split, count in (("train", pairs), ("validation", 500)):
    with (
      open(os.path.join(directory, f"{split}.source"), "wb") as src,
      open(os.path.join(directory, f"{split}.target"), "wb") as tgt,
    ):
      for start in range(0, count, _CHUNK):
        lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, min(_CHUNK, count - start))
        ids = rng.choice(TYPES, lengths.sum(), p=zipf)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        reverse = 2 * starts + np.repeat(lengths, lengths) - 1 - np.arange(len(ids))
        src.write(_lines(table, ids, lengths))
        tgt.write(_lines(table, mapping[ids][reverse], lengths))
    sizes[split] = {
      "pairs": count,
      "bytes": sum(
        os.path.getsize(os.path.join(directory, f"{split}.{s}")) for s in ("source", "target")
      ),
    }
  return sizes


def _memory(pid: int) -> dict[str, int]:
  """The process's resident kB: `VmRSS`, `RssAnon`, `RssFile`."""
  fields = {}
  try:
    with open(f"/proc/{pid}/status") as f:
      for line in f:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
          fields[name] = int(value.split()[0])
  except OSError:
    pass
  return fields


def _read(path: str) -> str:
  with open(path) as f:
    return f.read()


def run_trial(directory: str, workdir: str, cache: str, seed: int) -> dict:
  command = [
    sys.executable,
    "-m",
    "experiments.train",
    f"--config=experiments/configs/text.py:{directory},steps={_STEPS.value}",
    f"--workdir={workdir}",
    f"--config.seed={seed}",
    f"--config.dataset.cache_dir={cache}",
    f"--config.dataset.vocab={_VOCAB.value}",
    "--config.dataset.vocab_size=8000",
    "--config.data.source_buckets=(32, 64, 128)",
    "--config.data.target_buckets=(33, 65, 129)",
    "--config.model.embedding_size=64",
    "--config.model.encoder.hidden_size=64",
    "--config.model.dropout=0.0",
    "--config.train.log_every=1",
    "--config.eval.num_heatmaps=0",
  ]
  metrics = os.path.join(workdir, "metrics.jsonl")
  log_path = os.path.join(workdir + ".log")
  peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
  started = time.time()
  first_step = cache_ready = None
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    done = threading.Event()

    def sample() -> None:
      nonlocal first_step, cache_ready
      while not done.is_set():
        for name, value in _memory(process.pid).items():
          peak[name] = max(peak[name], value)
        if cache_ready is None and _READY in _read(log_path):
          cache_ready = time.time() - started
        if first_step is None and os.path.exists(metrics) and os.path.getsize(metrics):
          first_step = time.time() - started
        time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
  total = time.time() - started
  lines = _read(log_path).splitlines()
  if code:
    raise RuntimeError(f"{' '.join(command)} failed:\n" + "\n".join(lines[-20:]))
  return {
    "seed": seed,
    "cache_log": [line for line in lines if "cached" in line],
    "seconds_to_cache_ready": cache_ready,
    "seconds_to_first_step": first_step,
    "seconds_total": total,
    "peak_rss_mb": {name: round(kb / 1024, 1) for name, kb in peak.items()},
  }


def main(argv: list[str]) -> None:
  del argv
  from benchmarks.report import write_report

  root = _ROOT.value
  corpus = os.path.join(root, "corpus")
  started = time.time()
  sizes = write_corpus(corpus, _PAIRS.value)
  generated = time.time() - started
  print(f"wrote {sizes} in {generated:.1f} s", flush=True)
  cache = os.path.join(root, "cache")
  subprocess.run(["rm", "-rf", cache, os.path.join(root, "trial0"), os.path.join(root, "trial1")])
  results = []
  for seed in (0, 1):
    result = run_trial(corpus, os.path.join(root, f"trial{seed}"), cache, seed)
    print(json.dumps(result, indent=2), flush=True)
    results.append(result)
  cache_bytes = sum(
    os.path.getsize(os.path.join(dirpath, name))
    for dirpath, _, names in os.walk(cache)
    for name in names
  )
  write_report(
    _OUT.value,
    results,
    corpus=sizes,
    vocab=_VOCAB.value,
    steps=_STEPS.value,
    cache_mb=round(cache_bytes / 2**20, 1),
    corpus_seconds=round(generated, 1),
  )


if __name__ == "__main__":
  app.run(main)
