"""TFDS's WMT builders through `catalog`, built offline from tiny archives in the real layout.

The archives are laid out from TFDS's own subset definitions (URL, member paths, SGML or
plain or gzipped text). TFDS's unmodified download manager fetches them over HTTP from a
local proxy (or takes them from its manual dir), checks them against checksums (the one
thing replaced: the tiny archives' own), extracts them, and the builder parses and writes
array_record, which `catalog` reads back.
"""

import collections
import contextlib
import gzip
import http.server
import io
import pathlib
import posixpath
import tarfile
import threading
from collections.abc import Iterator

import pytest
import requests
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import extractor
from tensorflow_datasets.translate import wmt

from attn_research.data.datasets import catalog, open_dataset
from attn_research.errors import ConfigError
from tests.conftest import named

ROWS = 3  # non-empty pairs per subset; one more pair has an empty non-English side


def _text(path: str, lines: list[str]) -> bytes:
  """The file's bytes in the format its name says (SGML, gzip or plain, as WMT ships)."""
  if path.endswith(".sgm"):
    segs = "".join(f'<seg id="{i + 1}">{line}</seg>\n' for i, line in enumerate(lines))
    return f'<refset setid="x">\n<doc docid="1">\n<p>\n{segs}</p>\n</doc>\n</refset>\n'.encode()
  data = "".join(f"{line}\n" for line in lines).encode()
  return gzip.compress(data) if path.endswith(".gz") else data


def write_release(
  builder: tfds.core.DatasetBuilder, directory: pathlib.Path
) -> tuple[dict[str, pathlib.Path], dict[str, list[tuple[str, str]]]]:
  """One tiny archive per URL of the builder's subsets, named as the URL names it.

  Returns:
    url → archive, and split → the (non-English, English) pairs TFDS keeps.
  """
  other, english = builder.builder_config.language_pair
  archives: dict[str, dict[str, bytes]] = collections.defaultdict(dict)
  expected: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
  for split, names in builder.subsets.items():
    for name in names:
      subset = wmt.DATASET_MAP[name]
      (url,) = subset.get_url(other)
      rows = [f"{name} {i} Größe" for i in range(ROWS)]
      expected[split] += [(f"{row} {other}", f"{row} {english}") for row in rows]
      for path, lang in zip(subset.get_path(other), (other, english), strict=True):
        lines = [f"{row} {lang}" for row in rows] + ["" if lang == other else "orphan"]
        archives[url][path] = _text(path, lines)
  directory.mkdir(parents=True, exist_ok=True)
  paths = {}
  for url, members in archives.items():
    paths[url] = directory / posixpath.basename(url)
    with tarfile.open(paths[url], "w:gz") as tar:
      for path, data in members.items():
        info = tarfile.TarInfo(path)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  return paths, expected


@contextlib.contextmanager
def http_proxy(files: dict[str, pathlib.Path]) -> Iterator[tuple[int, list[str]]]:
  """A local HTTP proxy answering `files`' URLs with their bytes, anything else with 404.

  Yields:
    its port, and the URLs asked for so far.
  """
  requested: list[str] = []

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
      requested.append(self.path)  # a proxy gets the absolute URL
      if self.path not in files:
        self.send_error(404)
        return
      data = files[self.path].read_bytes()
      self.send_response(200)
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):
      del args

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    yield server.server_address[1], requested
  finally:
    server.shutdown()
    server.server_close()


def test_configs_name_both_directions():
  assert catalog.WMT14.name == "wmt14_translate"
  assert catalog.WMT14.configs == ("en-de", "de-en", "en-fr", "fr-en")
  assert catalog.WMT15.name == "wmt15_translate"
  assert catalog.WMT15.configs == ("en-de", "de-en")


def test_splits_are_tfds_definitions(tmp_path):
  """What TFDS 4.9.10 builds; the module docstring states it."""
  subsets = {
    (catalog.WMT14, "en-de"): (
      ["europarl_v7", "commoncrawl", "newscommentary_v9"],
      ["newstest2013"],
      ["newstest2014"],
    ),
    (catalog.WMT14, "fr-en"): (
      ["europarl_v7", "commoncrawl", "multiun", "newscommentary_v9", "gigafren"],
      ["newstest2013"],
      ["newstest2014"],
    ),
    (catalog.WMT15, "de-en"): (
      ["europarl_v7", "commoncrawl", "newscommentary_v10"],
      ["newstest2014"],
      ["newstest2015"],
    ),
  }
  for (family, config), (train, validation, test) in subsets.items():
    builder = family.builder(config, str(tmp_path))
    assert builder.subsets == {"train": train, "validation": validation, "test": test}


@pytest.mark.parametrize(
  ("family", "config", "served_by"),
  [
    (catalog.WMT14, "en-de", "http"),
    (catalog.WMT14, "en-de", "manual_dir"),
    (catalog.WMT14, "fr-en", "http"),
    (catalog.WMT15, "de-en", "http"),
  ],
  ids=["wmt14-de-http", "wmt14-de-manual", "wmt14-fr-http", "wmt15-de-http"],
)
def test_builds_offline_from_local_archives(family, config, served_by, tmp_path, monkeypatch):
  """Served over HTTP (TFDS's downloader through a local proxy) or from TFDS's manual dir."""
  data_dir = str(tmp_path / "tfds")
  builder = family.builder(config, data_dir)
  manual_dir = tmp_path / "tfds" / "downloads" / "manual"
  archives, expected = write_release(builder, manual_dir if served_by == "manual_dir" else tmp_path)
  url_infos = {url: tfds.download.checksums.compute_url_info(a) for url, a in archives.items()}
  monkeypatch.setattr(family.builder_cls, "url_infos", url_infos)
  other, english = builder.builder_config.language_pair
  tensorflow = extractor.tf

  with http_proxy(archives if served_by == "http" else {}) as (port, requested):
    for name in ("NO_PROXY", "no_proxy"):
      monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    into_english = open_dataset(named(f"{family.name}/{other}-{english}", data_dir)).load()
    from_english = open_dataset(named(f"{family.name}/{english}-{other}", data_dir)).load()
  assert sorted(requested) == (sorted(archives) if served_by == "http" else [])
  assert extractor.tf is tensorflow  # the build's stand-in is gone

  assert set(into_english) == set(from_english) == set(expected) == {"train", "validation", "test"}
  for split, pairs in expected.items():
    assert len(pairs) == ROWS * len(builder.subsets[split])
    got = into_english[split]
    assert sorted(zip(got["source"], got["target"], strict=True)) == sorted(pairs)
    got = from_english[split]
    assert sorted(zip(got["target"], got["source"], strict=True)) == sorted(pairs)


def test_network_failure_names_the_fix(tmp_path, monkeypatch):
  def send(*args, **kwargs):
    raise requests.ConnectionError("no network in tests")

  monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
  with pytest.raises(
    ConfigError, match=r"wmt14_translate/en-de: .* needs a network .*dataset\.data_dir"
  ):
    open_dataset(named("wmt14_translate/en-de", str(tmp_path))).load()
