"""Lists every config key with its default, its valid values and its meaning.

  python -m experiments.keys                          # markdown on stdout
  python -m experiments.keys --output=docs/config.md  # the reference page

The list is generated from the fields that declare the keys, so it cannot drift from them.
"""

from absl import flags

from attn_research import runs
from attn_research.training import experiment
from experiments import cli

_OUTPUT = flags.DEFINE_string("output", "", "Write the markdown to this file instead.")


def main(argv: list[str]) -> None:
  del argv
  text = experiment.reference()
  if _OUTPUT.value:
    runs.atomic_write(_OUTPUT.value, text)
  else:
    print(text, end="")


if __name__ == "__main__":
  cli.run(main)
