"""Where a run came from: the code (git commit, dirty or not), the libraries, the devices,
the processor, the host and the command. A run stores it in its `result.json`, and
comparisons warn when the runs they put side by side differ in what changes numbers: the
same code and seeds train slightly different models on another processor or jax.
"""

import datetime
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import jax

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collect() -> dict[str, Any]:
  """This process's provenance (JSON-ready)."""
  device = jax.devices()[0]
  return {
    "git": git_state(SOURCE),
    "python": platform.python_version(),
    "versions": {name: _version(name) for name in LIBRARIES},
    "devices": {
      "platform": device.platform,
      "kind": device.device_kind,
      "count": jax.device_count(),
      "processes": jax.process_count(),
    },
    "processor": processor(),
    "host": socket.gethostname(),
    "command": list(sys.orig_argv),  # the interpreter, `-m module` and every argument
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }


def _version(name: str) -> str | None:
  try:
    return metadata.version(name)
  except metadata.PackageNotFoundError:
    return None


def git_state(directory: str) -> dict[str, Any] | None:
  """`{"commit", "dirty"}` of the git checkout holding `directory` (tracked files only);
  None when it is not one or git is missing."""
  try:
    commit = subprocess.run(
      ["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
    )
    if commit.returncode:
      return None
    status = subprocess.run(
      ["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"],
      capture_output=True,
      text=True,
      timeout=10,
    )
  except (OSError, subprocess.TimeoutExpired):
    return None
  return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def processor() -> str:
  """The CPU's model name (`/proc/cpuinfo` on Linux), else what `platform` says."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _compared(provenance: Mapping[str, Any]) -> dict[str, Any]:
  """What a comparison checks: library versions, the processor and the device kind."""
  out = {name: provenance.get("versions", {}).get(name) for name in LIBRARIES}
  out["processor"] = provenance.get("processor")
  out["device"] = provenance.get("devices", {}).get("kind")
  return out


def differences(results: Sequence[Mapping[str, Any]]) -> str:
  """One line naming what the runs' provenance differs in ("" when nothing does, or when
  no run recorded any)."""
  known = [_compared(r["provenance"]) for r in results if r.get("provenance")]
  if len(known) < 2:
    return ""
  differ = []
  for key in known[0]:
    values = sorted({str(k[key]) for k in known})
    if len(values) > 1:
      differ.append(f"{key} ({', '.join(values)})")
  if not differ:
    return ""
  return (
    f"warning: the runs differ in {'; '.join(differ)}: part of their difference may come "
    "from that, not from the variants."
  )
