import os
import textwrap

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from attn_research.errors import ConfigError
from launch import sweep
from tests.conftest import REPO

# ml_collections' config_flags loads config files with the deprecated load_module().
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


CONFIG_FILE = """
import ml_collections

def get_config(arg=None):
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.name = "default"
  config.lr = 0.1
  config.flag = False
  config.splits = ("validation",)
  config.buckets = (10, 20)
  config.model = ml_collections.ConfigDict()
  config.model.encoder = ml_collections.ConfigDict()
  config.model.encoder.type = "bi"
  config.model.decoder = ml_collections.ConfigDict()
  config.model.decoder.type = "luong"
  return config
"""


def _write_config(tmp_path, sweep_body: str | None) -> str:
  text = CONFIG_FILE
  if sweep_body is not None:
    text += "\n\ndef get_sweep(arg, hyper):\n" + textwrap.indent(textwrap.dedent(sweep_body), "  ")
  path = tmp_path / "config.py"
  path.write_text(text)
  return str(path)


def _base():
  namespace = {}
  exec(CONFIG_FILE, namespace)
  return namespace["get_config"]()


def test_combinators():
  assert sweep.axis("a", [1, 2]) == [{"a": 1}, {"a": 2}]
  assert sweep.seeds(3) == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
  assert sweep.fixed("b", "x") == [{"b": "x"}]
  assert sweep.product(sweep.axis("a", [1, 2]), sweep.axis("b", ["x", "y"])) == [
    {"a": 1, "b": "x"},
    {"a": 1, "b": "y"},
    {"a": 2, "b": "x"},
    {"a": 2, "b": "y"},
  ]
  assert sweep.zip_(sweep.axis("a", [1, 2]), sweep.axis("b", ["x", "y"])) == [
    {"a": 1, "b": "x"},
    {"a": 2, "b": "y"},
  ]
  assert sweep.chain(sweep.axis("a", [1]), sweep.axis("b", ["x"])) == [{"a": 1}, {"b": "x"}]


def test_combinators_reject_clashes():
  with pytest.raises(ConfigError, match=r"product\(\) sets \['a'\] twice"):
    sweep.product(sweep.axis("a", [1]), sweep.axis("a", [2]))
  with pytest.raises(ConfigError, match="equal length, got \\[2, 1\\]"):
    sweep.zip_(sweep.axis("a", [1, 2]), sweep.axis("b", ["x"]))


def test_names_use_the_last_key_component():
  assert sweep.trial_names([{"model.attention.score": "dot", "seed": 1}]) == ["score=dot_seed=1"]


def test_names_disambiguate_shared_last_components():
  names = sweep.trial_names([{"model.encoder.type": "bi", "model.decoder.type": "luong"}])
  assert names == ["encoder.type=bi_decoder.type=luong"]
  assert sweep.trial_names([{"type": "a", "model.decoder.type": "b"}]) == ["type=a_decoder.type=b"]


def test_names_are_filesystem_safe_and_readable():
  names = sweep.trial_names(
    [{"dataset.name": "synthetic/copy", "splits": ("validation", "test"), "lr": 1e-05}]
  )
  assert names == ["name=synthetic-copy_splits=validation-test_lr=1e-05"]
  assert sweep.trial_names([{}]) == ["default"]


def test_names_are_stable_and_collisions_get_a_hash():
  base = [{"name": "a/b"}, {"name": "c"}]
  names = sweep.trial_names(base)
  assert names == sweep.trial_names(base) == ["name=a-b", "name=c"]
  colliding = sweep.trial_names([*base, {"name": "a b"}])
  assert colliding[1] == "name=c"
  assert colliding[0].startswith("name=a-b-") and colliding[2].startswith("name=a-b-")
  assert colliding[0] != colliding[2]
  # A trial's hash depends only on its own overrides.
  assert colliding[0] == sweep.trial_names([{"name": "a/b"}, {"name": "a:b"}])[0]


def test_long_names_are_cut_and_stay_unique():
  names = sweep.trial_names([{"name": "x" * 200 + "1"}, {"name": "x" * 200 + "2"}])
  assert all(len(n) <= sweep.MAX_NAME for n in names)
  assert len(set(names)) == 2


def _parse(trial: sweep.Trial) -> ml_collections.ConfigDict:
  """The config experiments.train would build from the trial's arguments."""
  argv = ["train", *trial.train_args("/tmp/run")]
  values = flags.FlagValues()
  holder = config_flags.DEFINE_config_file(
    "config", None, "", flag_values=values, lock_config=True, sys_argv=argv
  )
  flags.DEFINE_string("workdir", None, "", flag_values=values)
  values(argv)
  return holder.value


@pytest.mark.parametrize(
  "overrides",
  [
    {"seed": 3, "lr": 1e-05, "flag": True, "name": "synthetic/copy"},
    {"lr": 3, "flag": False, "name": "a b'c\"d=e", "splits": ("validation", "test")},
    {"name": "", "splits": (), "buckets": (5,)},
    {"splits": ("test_long",), "buckets": [1, 2, 3], "model.decoder.type": "none_state"},
    {"name": "true", "lr": 2.5e-3, "seed": -1},
  ],
)
def test_overrides_round_trip_through_the_training_flags(tmp_path, overrides):
  path = _write_config(tmp_path, f"return [{overrides!r}]")
  (trial,) = sweep.load_sweep(path)
  parsed = _parse(trial)
  for key, value in overrides.items():
    expected = tuple(value) if isinstance(value, list) else value
    expected = float(value) if key == "lr" else expected  # an int sets a float field
    got = parsed
    for part in key.split("."):
      got = got[part]
    assert got == expected and type(got) is type(expected), (key, got)


def test_load_sweep_passes_the_config_arg(tmp_path):
  path = _write_config(tmp_path, "return hyper.axis('name', [arg])")
  (trial,) = sweep.load_sweep(f"{path}:hello")
  assert trial.overrides == {"name": "hello"} and trial.config == f"{path}:hello"
  assert trial.train_args("/w")[:2] == [f"--config={path}:hello", "--workdir=/w"]


@pytest.mark.parametrize(
  "bad, message",
  [
    (
      {"model.decoder.typ": "x"},
      r"model.decoder.typ is not a config key \(did you mean model.decoder.type\?\)",
    ),
    ({"seed": "1"}, "'1' is a str, seed a int"),
    ({"seed": True}, "True is a bool, seed a int"),
    ({"flag": 1}, "1 is a int, flag a bool"),
    ({"lr": "fast"}, "'fast' is a str, lr a float"),
    ({"model": "x"}, "model is a config section"),
    ({"splits": ("a", object())}, "cannot carry"),
  ],
)
def test_bad_overrides_name_the_key_and_trial(bad, message):
  with pytest.raises(ConfigError, match=message) as e:
    sweep.make_trials("c.py", _base(), [{"seed": 1}, bad])
  assert str(e.value).startswith("c.py: trial 1 ")


def test_duplicate_trials_are_rejected():
  with pytest.raises(ConfigError, match=r"trial 2 .* same config as trial 0"):
    sweep.make_trials("c.py", _base(), [{"seed": 1}, {"seed": 2}, {"seed": 1}])
  with pytest.raises(ConfigError, match=r"trial 1 .* same config as trial 0"):
    sweep.make_trials("c.py", _base(), [{}, {"seed": 0}])  # 0 is the default
  with pytest.raises(ConfigError, match=r"trial 1 .* same config as trial 0"):
    sweep.make_trials("c.py", _base(), [{"lr": 1}, {"lr": 1.0}])


def test_load_sweep_errors(tmp_path):
  with pytest.raises(ConfigError, match="No config file"):
    sweep.load_sweep(str(tmp_path / "missing.py"))
  with pytest.raises(ConfigError, match="defines no get_sweep"):
    sweep.load_sweep(_write_config(tmp_path, None))
  with pytest.raises(ConfigError, match="returned no trials"):
    sweep.load_sweep(_write_config(tmp_path, "return []"))


def test_synthetic_sweep_compares_decoders_over_seeds():
  config = os.path.join(REPO, "experiments/configs/synthetic.py") + ":copy"
  trials = sweep.load_sweep(config)
  assert [t.name for t in trials] == [
    "type=luong_seed=0",
    "type=luong_seed=1",
    "type=none_state_seed=0",
    "type=none_state_seed=1",
  ]
  parsed = _parse(trials[3])
  assert parsed.model.decoder.type == "none_state" and parsed.seed == 1
  assert parsed.dataset.name == "synthetic/copy"
