"""Reading Debian binary packages (`.deb`) without dpkg, as `apt-get download` saves them.

A `.deb` is an ar archive of `debian-binary`, `control.tar.*` and `data.tar.*`; Python's
tarfile opens the xz, gzip and bzip2 members Debian 12 uses (not zstd, which Ubuntu uses).
"""

import io
import os
import tarfile
from collections.abc import Mapping

from attn_research.errors import ConfigError

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER_SIZE = 60


def deb_filename(package: str, version: str, arch: str = "all") -> str:
  """The name `apt-get download` gives the file: the epoch colon escaped as `%3a`."""
  return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def apt_get_download(packages: Mapping[str, str]) -> list[str]:
  """argv that downloads each package at its pinned version into the current directory."""
  return ["apt-get", "download", *(f"{name}={version}" for name, version in packages.items())]


def ar_members(path: str | os.PathLike) -> dict[str, bytes]:
  """Member name → content of an ar archive (the container format of a `.deb`)."""
  with open(path, "rb") as f:
    data = f.read()
  if not data.startswith(_AR_MAGIC):
    raise ConfigError(f"{path} is not a .deb (no ar header); delete it and download it again.")
  members, pos = {}, len(_AR_MAGIC)
  while pos + _AR_HEADER_SIZE <= len(data):
    header = data[pos : pos + _AR_HEADER_SIZE]
    if header[58:60] != b"`\n":
      raise ConfigError(f"{path} is a damaged .deb; delete it and download it again.")
    name = header[:16].decode("ascii").strip().rstrip("/")
    size = int(header[48:58].decode("ascii"))
    start = pos + _AR_HEADER_SIZE
    members[name] = data[start : start + size]
    pos = start + size + size % 2  # Members start at even offsets.
  return members


def _tar_member(path: str | os.PathLike, members: dict[str, bytes], stem: str) -> tarfile.TarFile:
  for name, content in members.items():
    if name.startswith(stem + "."):
      if not name.endswith((".xz", ".gz", ".bz2")) and name != f"{stem}.tar":
        raise ConfigError(
          f"{path} holds {name}, which Python's tarfile cannot open; use the Debian 12 package."
        )
      return tarfile.open(fileobj=io.BytesIO(content), mode="r:*")
  raise ConfigError(f"{path} has no {stem} member; delete it and download it again.")


def read_control(path: str | os.PathLike) -> dict[str, str]:
  """The package's control fields (`Package`, `Version`, …), continuation lines dropped."""
  with _tar_member(path, ar_members(path), "control.tar") as tar:
    member = next((m for m in tar.getmembers() if m.name.removeprefix("./") == "control"), None)
    if member is None:
      raise ConfigError(f"{path} has no control file; delete it and download it again.")
    text = tar.extractfile(member).read().decode("utf-8")
  fields = {}
  for line in text.splitlines():
    if line and not line[0].isspace() and ":" in line:
      key, _, value = line.partition(":")
      fields[key] = value.strip()
  return fields


def data_files(path: str | os.PathLike, prefix: str) -> dict[str, bytes]:
  """Path (without `./`) → content of the regular files under `prefix`, sorted by path."""
  found = {}
  with _tar_member(path, ar_members(path), "data.tar") as tar:
    for member in tar.getmembers():
      name = member.name.removeprefix("./")
      if member.isfile() and name.startswith(prefix):
        found[name] = tar.extractfile(member).read()
  return dict(sorted(found.items()))


def package_problems(manual_dir: str | os.PathLike, packages: Mapping[str, str]) -> list[str]:
  """What keeps `manual_dir` from holding each package at its pinned version ([] if nothing).

  Reads only the control member of each file, so it is cheap to run before a build.
  """
  problems = []
  for package, version in packages.items():
    path = os.path.join(manual_dir, deb_filename(package, version))
    if not os.path.exists(path):
      others = sorted(
        f
        for f in (os.listdir(manual_dir) if os.path.isdir(manual_dir) else [])
        if f.startswith(f"{package}_") and f.endswith(".deb")
      )
      found = (
        f" (found {', '.join(others)}, but the build is pinned to {version})" if others else ""
      )
      problems.append(f"missing {os.path.basename(path)}{found}")
      continue
    control = read_control(path)
    got = (control.get("Package"), control.get("Version"))
    if got != (package, version):
      problems.append(f"{os.path.basename(path)} holds {got[0]}={got[1]}, not {package}={version}")
  return problems
