"""Writing a benchmark's measurements: one JSON file, tagged with the device it ran on."""

import json
import os

import jax


def write_report(path: str | None, results: list[dict], **settings) -> None:
  """Writes `{"device", **settings, "results"}` to `path` (nothing when `path` is None)."""
  if not path:
    return
  report = {
    "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    **settings,
    "results": results,
  }
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(report, f, indent=2)
