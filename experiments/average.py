r"""Averages the parameters of a run's latest checkpoints into its `averaged/` checkpoint.

  python -m experiments.average --workdir=runs/l10n_en_de --last=2
  python -m experiments.evaluate --workdir=runs/l10n_en_de --checkpoint=average
  python -m experiments.translate --workdir=runs/l10n_en_de --checkpoint=average < in.txt

The run keeps its last `train.keep_checkpoints` checkpoints (`checkpoints/`), so --last
is at most that; train with a larger `train.keep_checkpoints` to average more. The
average is the latest state with its parameters replaced by the element-wise mean
(summed in float64), saved at the latest step; averaging again replaces it.
"""

from absl import app, flags

from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_LAST = flags.DEFINE_integer("last", 2, "How many of the latest checkpoints to average.")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from attn_research.inference import averaging

  steps = averaging.average_checkpoints(_WORKDIR.value, _LAST.value)
  print(
    f"Averaged the checkpoints of steps {', '.join(map(str, steps))} into {_WORKDIR.value}/averaged."
  )


if __name__ == "__main__":
  cli.run(main)
