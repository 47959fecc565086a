"""Paper tables that `experiments.reproduce` runs, by `--table` name.

To add one: write a module here defining a `table.Table` (rows with the paper's numbers
and the overrides that make each system, a `Setup` per scale), and list it below.
"""

from attn_research.registry import Registry
from experiments.tables import (
  bahdanau2015,
  britz2017,
  chiu2018,
  luong2015,
  peters2019,
  raffel2017,
  textbook,
  tfnmt,
  tu2016,
)
from experiments.tables.table import Table

TABLES: Registry[Table] = Registry("paper table", "--table")
for _table in (
  luong2015.TABLE1,
  luong2015.TABLE4,
  luong2015.TABLE4_RECIPE,
  luong2015.TABLE6,
  luong2015.TABLE6_RECIPE,
  bahdanau2015.TABLE,
  bahdanau2015.RECIPE_TABLE,
  britz2017.TABLE,
  tfnmt.TABLE,
  textbook.TABLE,
  peters2019.TABLE,
  tu2016.TABLE,
  raffel2017.TABLE,
  chiu2018.TABLE,
):
  TABLES.register(_table.name)(_table)
