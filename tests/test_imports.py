"""Imports run one way: experiments → launch → attn_research, and within the library the
evaluation code does not depend on the training code."""

import ast
import pathlib

import pytest

from tests.conftest import REPO


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
  return names


@pytest.mark.parametrize(
  "package, forbidden",
  [
    ("attn_research", ("experiments", "launch", "benchmarks")),
    ("attn_research/evaluation", ("attn_research.training",)),
    ("launch", ("experiments", "benchmarks")),
  ],
)
def test_no_upward_imports(package, forbidden):
  offenders = {
    str(path.relative_to(REPO)): sorted(
      name
      for name in _imports(path)
      if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    )
    for path in pathlib.Path(REPO, package).rglob("*.py")
  }
  assert {path: names for path, names in offenders.items() if names} == {}


def test_library_packages_import_without_cycles():
  """No package of the library imports one that imports it back (the module docstring of
  `benchmarks.code_shape`), e.g. training ↔ a config checker."""
  from benchmarks.code_shape import upward_imports

  assert upward_imports(str(REPO)) == []
