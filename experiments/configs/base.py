r"""The base config: every key an experiment has, at its default.

The defaults are declared once, beside each key's constraint and meaning, by the section
that reads it (`attn_research.training.experiment.Experiment`; `docs/config.md` lists
them). Dataset configs (`dates.py`, `synthetic.py`, `debian_l10n.py`) start from it and
set the dataset, its padded shapes and the model and training sizes that suit it. Keys
no dataset config sets keep Luong et al. 2015's global `general` attention with input
feeding over a bidirectional LSTM encoder, Adam with a cosine schedule.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  # Imported here: the paper tables and launchers import the configs without loading jax.
  from attn_research.training import experiment

  return experiment.defaults()
