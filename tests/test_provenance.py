"""Where a run came from, and the warning when compared runs differ in it."""

import subprocess

from attn_research import provenance


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path):
  assert provenance.git_state(str(tmp_path)) is None  # not a checkout
  git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
  subprocess.run([*git, "init", "-q"], check=True)
  (tmp_path / "a.py").write_text("x = 1\n")
  subprocess.run([*git, "add", "a.py"], check=True)
  subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
  head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
  (tmp_path / "untracked.txt").write_text("not code\n")
  assert provenance.git_state(str(tmp_path)) == {"commit": head.strip(), "dirty": False}
  (tmp_path / "a.py").write_text("x = 2\n")
  assert provenance.git_state(str(tmp_path)) == {"commit": head.strip(), "dirty": True}


def test_collect_describes_this_process():
  record = provenance.collect()
  assert set(record) == {
    "git",
    "python",
    "versions",
    "devices",
    "processor",
    "host",
    "command",
    "xla_flags",
    "time",
  }
  assert record["versions"]["numpy"] and record["devices"]["count"] == 8
  assert record["processor"] and record["git"]["commit"]  # the tests run from a checkout


def _result(jax_version: str, processor: str) -> dict:
  versions = {name: "1.0" for name in provenance.LIBRARIES} | {"jax": jax_version}
  return {"provenance": {"versions": versions, "processor": processor, "devices": {"kind": "cpu"}}}


def test_differences_name_what_changes_numbers_in_one_line():
  same = [_result("0.10.2", "AMD EPYC"), _result("0.10.2", "AMD EPYC")]
  assert provenance.differences(same) == ""
  assert provenance.differences([same[0], {"metrics": {}}]) == ""  # a run that predates it
  line = provenance.differences([*same, _result("0.11.0", "Intel Xeon")])
  assert line == (
    "warning: the runs differ in jax (0.10.2, 0.11.0); processor (AMD EPYC, Intel Xeon): part "
    "of their difference may come from that, not from the variants."
  )
