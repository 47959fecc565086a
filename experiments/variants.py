"""Lists every registered variant family and its names, one family per line.

python -m experiments.variants
"""

from attn_research.attention import ALIGNMENTS, NORMALIZERS, SCORES
from attn_research.attention.coverage import COVERAGES, NO_COVERAGE
from attn_research.data.datasets import DATASETS
from attn_research.data.tokenizers import TOKENIZERS
from attn_research.model import BRIDGES, CELLS, DECODERS, ENCODERS
from attn_research.training.optimizers import OPTIMIZERS, SCHEDULES
from attn_research.training.sampling import DECAYS as SAMPLING_DECAYS
from experiments import cli

FAMILIES = (
  SCORES,
  ALIGNMENTS,
  NORMALIZERS,
  COVERAGES,
  ENCODERS,
  CELLS,
  BRIDGES,
  DECODERS,
  DATASETS,
  TOKENIZERS,
  OPTIMIZERS,
  SCHEDULES,
  SAMPLING_DECAYS,
)


def _names(registry) -> list[str]:
  """Dataset families are listed with their configs (`synthetic/reverse`)."""
  if registry is COVERAGES:
    return [NO_COVERAGE, *registry.names()]
  if registry is not DATASETS:
    return registry.names()
  return [
    f"{family}/{config}" if config else family
    for family in DATASETS.names()
    for config in (DATASETS.get(family).configs or ("",))
  ]


def main(argv: list[str]) -> None:
  del argv
  width = max(len(r.config_key) for r in FAMILIES)
  for registry in FAMILIES:
    print(f"{registry.config_key:<{width}}  {' '.join(_names(registry))}")


if __name__ == "__main__":
  cli.run(main)
