r"""The code's shape, measured: how far a config travels, which imports run upward, and the
longest functions.

  python -m benchmarks.code_shape [--tree=DIR] [--output=benchmarks/results/code_shape.json]

`--tree` measures another checkout (say, an older commit's `git worktree`) with this
environment's packages.

* **The walk of `config`**: a two-step training run on `dates` traced with
  `sys.setprofile`. A stop is a function of the tree that receives the experiment config,
  one of its sections (a `ConfigDict` inside it) or a typed section (a dataclass declared
  with config fields), counted once, in the order first called from
  `train_and_evaluate`; a climb back up is a stop in a file the walk had left before; a
  file is entered once per run of consecutive stops in it.
* **Imports that run upward**: module-level imports between the library's packages
  (`attn_research.<package>`, a top-level module counting as its own package) that close
  a cycle in the package graph.
* **The longest functions** of the library, the entry points and the launchers.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile

TRACE = r"""
import dataclasses, json, os, sys
sys.path.insert(0, TREE)
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
import ml_collections
from attn_research.data import datasets
from attn_research.training import trainer
from experiments.configs import dates

assert os.path.dirname(trainer.__file__).startswith(TREE), trainer.__file__
config = dates.get_config()
config.dataset.data_dir = os.path.join(WORK, "tfds")
config.model.embedding_size, config.model.encoder.hidden_size = 8, 16
for key, value in dict(num_steps=2, batch_size=8, log_every=1, eval_every=1,
                       checkpoint_every=2, warmup_steps=1).items():
  setattr(config.train, key, value)
config.eval.splits = ("validation",)
config.eval.num_heatmaps = 0
datasets_load = getattr(datasets, "load", None)
if datasets_load:
  datasets_load("dates", config.dataset.data_dir)

def is_section(value):
  if isinstance(value, ml_collections.ConfigDict):
    return True
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return any({"constraint", "section"} & set(f.metadata) for f in dataclasses.fields(value))
  return False

stops, seen, started = [], set(), [False]
def profile(frame, event, arg):
  if event != "call":
    return
  code = frame.f_code
  path = code.co_filename
  if not path.startswith(TREE) or "/tests/" in path or "site-packages" in path:
    return
  if code.co_name == "train_and_evaluate":
    started[0] = True
  if not started[0]:
    return
  names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
  if any(is_section(frame.f_locals.get(n)) for n in names if n != "self"):
    key = (path, code.co_firstlineno)
    if key not in seen:
      seen.add(key)
      stops.append([os.path.relpath(path, TREE), code.co_qualname])

sys.setprofile(profile)
trainer.train_and_evaluate(config, os.path.join(WORK, "run"))
sys.setprofile(None)
print(json.dumps(stops))
"""


def config_walk(tree: str) -> dict:
  """The stops of `config` through a short training run of `tree` (the module docstring)."""
  with tempfile.TemporaryDirectory() as work:
    code = f"TREE = {tree!r}\nWORK = {work!r}\n" + TRACE
    out = subprocess.run(
      [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tree
    )
  stops = json.loads(out.stdout.strip().splitlines()[-1])
  files = [path for path, _ in stops]
  entries: dict[str, int] = {}
  climbs, previous, left = 0, None, set()
  for path in files:
    if path != previous:
      entries[path] = entries.get(path, 0) + 1
      if path in left:
        climbs += 1
      if previous is not None:
        left.add(previous)
      previous = path
  return {
    "stops": len(stops),
    "files": len(set(files)),
    "climbs_back_up": climbs,
    "most_entered": sorted(entries.items(), key=lambda kv: -kv[1])[:5],
    "walk": [f"{path}:{name}" for path, name in stops],
  }


def _modules(tree: str, package: str) -> dict[str, str]:
  """Module name → file of every module under `tree/package`."""
  out = {}
  for root, _, names in os.walk(os.path.join(tree, package)):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(root, name)
        module = os.path.relpath(path, tree)[:-3].replace(os.sep, ".")
        out[module.removesuffix(".__init__")] = path
  return out


def _package(module: str) -> str:
  parts = module.split(".")
  return ".".join(parts[:2])


def upward_imports(tree: str) -> list[str]:
  """Imports between the library's packages that close a cycle (module-level only)."""
  modules = _modules(tree, "attn_research")
  edges: dict[str, set[str]] = {}
  where: dict[tuple[str, str], str] = {}
  for module, path in modules.items():
    with open(path, encoding="utf-8") as f:
      body = ast.parse(f.read()).body
    for node in body:
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      for target in targets:
        if target in modules and _package(target) != _package(module):
          edges.setdefault(_package(module), set()).add(_package(target))
          where.setdefault((_package(module), _package(target)), f"{module} → {target}")

  def reaches(start: str, goal: str) -> bool:
    stack, seen = [start], set()
    while stack:
      node = stack.pop()
      if node == goal:
        return True
      if node not in seen:
        seen.add(node)
        stack.extend(edges.get(node, ()))
    return False

  return sorted(where[(a, b)] for a in edges for b in edges[a] if reaches(b, a))


def longest_functions(tree: str, count: int = 10) -> list[tuple[str, int]]:
  """The `count` longest functions (lines, docstring included) of the package, the entry
  points and the launchers."""
  found = []
  for package in ("attn_research", "experiments", "launch"):
    for module, path in _modules(tree, package).items():
      with open(path, encoding="utf-8") as f:
        parsed = ast.parse(f.read())
      for node in ast.walk(parsed):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
          found.append((f"{module}.{node.name}", node.end_lineno - node.lineno + 1))
  return sorted(found, key=lambda item: -item[1])[:count]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tree", default=os.getcwd())
  parser.add_argument("--output", default="")
  args = parser.parse_args()
  tree = os.path.abspath(args.tree)
  commit = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
  ).stdout.strip()
  report = {
    "commit": commit,
    "config_walk": config_walk(tree),
    "upward_imports": upward_imports(tree),
    "longest_functions": longest_functions(tree),
  }
  walk = report["config_walk"]
  print(
    f"{commit}: config walk {walk['stops']} stops in {walk['files']} files, "
    f"{walk['climbs_back_up']} climbs back up; most entered {walk['most_entered'][:3]}"
  )
  print(f"upward imports: {len(report['upward_imports'])} {report['upward_imports']}")
  print("longest functions: " + ", ".join(f"{n} {k}" for n, k in report["longest_functions"][:5]))
  if args.output:
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=2, ensure_ascii=False)
      f.write("\n")


if __name__ == "__main__":
  main()
