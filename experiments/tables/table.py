"""A paper table: the paper's rows, the runs that reproduce them, ours printed beside theirs.

A `Table` lists `Row`s (a system of the paper: its numbers there, and the config
overrides that make it here) and, per scale, a `Setup` (the config file and the overrides
every row shares). `plan` turns a scale into `launch.sweep` trials, validated against the
config; `render` reads their `result.json` files into a markdown table. Every number under
"ours" is a run's own; a row without a finished run shows "—" and a note saying why.
"""

import dataclasses
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from attn_research import runs
from attn_research.config import files as config_files
from attn_research.config import overrides as config_overrides
from attn_research.errors import ConfigError
from attn_research.evaluation import leaderboard, metrics, significance
from experiments import report
from experiments.configs import debian_l10n
from launch.sweep import Overrides, Trial, make_trials

SCALES = ("tiny", "small", "paper")
DEFAULT_SEEDS = {"tiny": 3, "small": 1, "paper": 1}  # trials per row: tiny ones are cheap
CAVEAT = (
  "Different data and a different scale: our numbers are not expected to match the paper's. "
  "What a small run can show is the ordering between rows."
)


def tiny_l10n(pair: str, steps: int, max_words: int = 30) -> tuple[str, str]:
  """The tiny-scale debian_l10n config (`path:arg`) shared by the tables, and a note on
  how it trains, read from the values of its scale (`debian_l10n.TINY`)."""
  arg = f"{pair},scale=tiny,steps={steps},max_words={max_words}"
  tiny = debian_l10n.TINY
  words = f"training pairs of ≤ {max_words} words, " if max_words else ""
  note = (
    f"SentencePiece {tiny['dataset.vocab_size']}, {words}Adam at "
    f"{tiny['train.learning_rate']:g} with cosine decay, {steps} steps of "
    f"{tiny['train.batch_size']} pairs."
  )
  return f"experiments/configs/debian_l10n.py:{arg}", note


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


@dataclasses.dataclass(frozen=True)
class Column:
  """One of our numbers per row.

  Attributes:
    label: what it is, e.g. "tokenized BLEU".
    key: dotted path into result.json; `{split}` stands for `split`.
    decimals: digits after the point.
    factor: multiplies the value before printing (1e-6 shows parameters in millions).
    split: the split it reads; "" = the setup's.
  """

  label: str
  key: str
  decimals: int = 2
  factor: float = 1.0
  split: str = ""


@dataclasses.dataclass(frozen=True)
class Setup:
  """How a table runs at one scale.

  Attributes:
    config: the config file every trial trains, `path[:arg]`, relative to the repo root.
    data: what our numbers are measured on, for the column headers.
    overrides: config overrides shared by every row at this scale.
    split: the split our columns read.
    seeds: trials per row (seeds 0 … n-1); 1 trains the config's own seed only; 0 takes
      the scale's default (`DEFAULT_SEEDS`).
    per_row: row name → overrides added to that row at this scale (e.g. its step count).
    note: what this scale approximates, for the caption.
  """

  config: str
  data: str
  overrides: Overrides
  split: str = "test"
  seeds: int = 0
  per_row: Mapping[str, Overrides] = dataclasses.field(default_factory=dict)
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Row:
  """A system of the paper.

  Attributes:
    label: its name in the paper.
    name: its trial directory (`<name>_seed=<s>` with several seeds).
    paper: the paper's numbers as printed, one per `Table.paper_columns` ("" = not given).
    overrides: what makes it here; None for a row we do not run (`note` says why).
    note: printed under the table.
  """

  label: str
  name: str
  paper: tuple[str, ...]
  overrides: Overrides | None = None
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Claim:
  """A comparison the paper makes: row `better` beats row `worse` on `metric`.

  Attributes:
    better, worse: row names.
    metric: one of `evaluation.metrics.SCORES` (lower is better for aer), on the
      setup's split.
    paper: the paper's evidence, e.g. "19.0 vs 17.3"; "" where it states the order only.
    scales: where our runs can test it (e.g. not where the metric means nothing).
  """

  better: str
  worse: str
  metric: str
  paper: str = ""
  scales: tuple[str, ...] = SCALES


@dataclasses.dataclass(frozen=True)
class Table:
  """A paper table and how to reproduce it at each of `SCALES`.

  Attributes:
    name: the `--table` name.
    title: the paper and table.
    source: where the paper's numbers were copied from.
    paper_columns: headers of the paper's numbers, naming their data and metric.
    columns: our numbers.
    rows: the paper's systems, in its order.
    setups: scale → setup.
    caption: what the table compares and what is approximated at every scale.
    figure: title of a BLEU-by-source-length plot of every row; "" = no figure.
    claims: the paper's comparisons between rows, each given a verdict from our runs.
  """

  name: str
  title: str
  source: str
  paper_columns: tuple[str, ...]
  columns: tuple[Column, ...]
  rows: tuple[Row, ...]
  setups: Mapping[str, Setup]
  caption: str
  figure: str = ""
  claims: tuple[Claim, ...] = ()

  def __post_init__(self):
    names = [row.name for row in self.rows]
    if len(set(names)) != len(names) or not all(_NAME.match(n) for n in names):
      raise ValueError(f"{self.name}: row names must be unique and file-name safe: {names}")
    for claim in self.claims:
      known = claim.metric in metrics.SCORES and set(claim.scales) <= set(SCALES)
      if {claim.better, claim.worse} - set(names) or not known:
        raise ValueError(f"{self.name}: a claim names an unknown row or metric: {claim}")
    for row in self.rows:
      if len(row.paper) != len(self.paper_columns):
        raise ValueError(f"{self.name}: row {row.name} needs one paper value per paper column")
    if set(self.setups) != set(SCALES):
      raise ValueError(f"{self.name}: needs a setup for each of {SCALES}")
    for setup in self.setups.values():
      unknown = set(setup.per_row) - set(names)
      if unknown:
        raise ValueError(f"{self.name}: per_row names no row: {sorted(unknown)}")

  def with_recipe(self, recipe: Mapping[str, Overrides], note: Mapping[str, str]) -> "Table":
    """This table trained with the paper's own recipe: `<name>_recipe`, whose setups add
    `recipe[scale]` (optimizer, schedule: the paper's training mapped to the scale) to
    their overrides and `note[scale]` to their notes; a scale without a recipe (the paper
    scale, which has it already) is as here."""
    setups = {
      scale: dataclasses.replace(
        setup,
        overrides={**setup.overrides, **recipe[scale]},
        note=f"{setup.note} {note[scale]}".strip(),
      )
      if scale in recipe
      else setup
      for scale, setup in self.setups.items()
    }
    return dataclasses.replace(
      self, name=f"{self.name}_recipe", title=f"{self.title}, the paper's recipe", setups=setups
    )

  def setup(self, scale: str) -> Setup:
    if scale not in self.setups:
      raise ConfigError(f"Unknown scale {scale!r}; pass --scale as one of {', '.join(SCALES)}.")
    return self.setups[scale]


def num_seeds(table: Table, scale: str, seeds: int = 0) -> int:
  """Trials per row: `seeds`, else the setup's, else the scale's default."""
  if seeds < 0:
    raise ConfigError(f"--seeds={seeds}: pass a number of seeds ≥ 1, or 0 for the default.")
  return seeds or table.setup(scale).seeds or DEFAULT_SEEDS[scale]


def plan(table: Table, scale: str, seeds: int = 0) -> dict[str, list[Trial]]:
  """Row name → its trials (one per seed, `num_seeds`) at `scale`; rows we do not run are
  absent.

  Raises:
    ConfigError: an override names no config field or has the wrong type.
  """
  setup = table.setup(scale)
  count = num_seeds(table, scale, seeds)
  seed_values: list[int | None] = list(range(count)) if count > 1 else [None]
  keyed = []
  for row in table.rows:
    if row.overrides is None:
      continue
    overrides = {**setup.overrides, **row.overrides, **setup.per_row.get(row.name, {})}
    for seed in seed_values:
      name = row.name if seed is None else f"{row.name}_seed={seed}"
      keyed.append((row.name, name, overrides if seed is None else {**overrides, "seed": seed}))
  trials = make_trials(
    setup.config, config_files.load_config(setup.config), [o for _, _, o in keyed]
  )
  out: dict[str, list[Trial]] = {}
  for (row, name, _), trial in zip(keyed, trials, strict=True):
    out.setdefault(row, []).append(dataclasses.replace(trial, name=name))
  return out


def launch_order(trials: Mapping[str, Sequence[Trial]]) -> list[Trial]:
  """Every trial of `plan`, seed by seed: each row's first seed compiles its programs while
  the other rows' first seeds run, and its later seeds load them from the compilation
  cache instead of compiling them at the same time."""
  return [t for group in itertools.zip_longest(*trials.values()) for t in group if t is not None]


def trial_config(base: ml_collections.ConfigDict, trial: Trial) -> ml_collections.ConfigDict:
  """The config `experiments.train` resolves for `trial`."""
  return config_overrides.apply_overrides(base, trial.overrides)


# ----------------------------------------------------------------------------------------
# Results.


@dataclasses.dataclass(frozen=True)
class Outcome:
  """A trial's completed result, or why there is none."""

  trial: Trial
  trial_path: str
  result: dict[str, Any] | None
  problem: str = ""


def outcome(trial: Trial, root: str) -> Outcome:
  run = runs.read_run(trial.workdir(root))
  if run.status == runs.COMPLETED:
    return Outcome(trial, run.path, run.result)
  lines = [line.strip() for line in run.error.splitlines() if line.strip()]
  last = lines[-1] if lines else "no output"
  problems = {
    runs.FAILED_STATUS: f"failed: {last} (see {os.path.join(run.path, runs.FAILED)})",
    runs.DIVERGED: f"diverged: {last}",
    runs.UNFINISHED: f"unfinished: started, no {runs.RESULT} yet",
    runs.NEW: "not run yet",
  }
  return Outcome(trial, run.path, None, problems[run.status])


def _lookup(result: dict[str, Any], key: str) -> float | None:
  node: Any = result
  for part in key.split("."):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  return None if node is None else float(node)


def cell(values: Sequence[float], column: Column) -> str:
  """Mean ± sample std over seeds (ddof 1), or the value of a single run."""
  scaled = [v * column.factor for v in values]
  if len(scaled) == 1:
    return report.number(scaled[0], column.decimals)
  return report.mean_std(leaderboard.stat(scaled), column.decimals)


METRIC_LABELS = {
  "bleu": "BLEU",
  "tokenized_bleu": "tokenized BLEU",
  "chrf": "chrF",
  "exact_match": "exact match",
  "aer": "AER",
}


@dataclasses.dataclass(frozen=True)
class Verdict:
  """Our test of a claim: `comparison` is better row against worse row; `verdict` is
  "agrees", "disagrees" (either with " (seeds split)" where the seeds run in both rows do
  not all order them alike), "not significant", or why there is no test; `seeds` counts
  the seeds run in both rows, and those where the better row's run beats the worse row's."""

  claim: Claim
  comparison: significance.Comparison | None
  verdict: str
  seeds: tuple[int, int] = (0, 0)


def verdict(
  claim: Claim, better: Sequence[Outcome], worse: Sequence[Outcome], split: str
) -> Verdict:
  """Tests `claim` by a paired bootstrap of the better row's seeds against the worse row's."""
  if not (better and worse):
    return Verdict(claim, None, "no test: a row is not run at this scale")
  done = [[o for o in outcomes if o.result is not None] for outcomes in (better, worse)]
  if not all(done):
    return Verdict(claim, None, "no test: a row has no finished run")
  try:
    (better_row, worse_row) = (
      leaderboard.sentence_statistics(
        [leaderboard.Run(o.trial_path, o.result) for o in row], split, claim.metric
      )
      for row in done
    )
  except ConfigError as e:
    return Verdict(claim, None, f"no test: {e}")
  if better_row[0] != worse_row[0]:
    return Verdict(claim, None, "no test: the rows scored different references")
  score = metrics.SCORES[claim.metric]
  sign = 1 if metrics.HIGHER_IS_BETTER[claim.metric] else -1
  comparison = significance.paired_bootstrap(worse_row[1], better_row[1], score)
  by_seed = [
    {o.trial.overrides.get("seed"): score(stats.sum(0)) for o, stats in zip(row, s, strict=True)}
    for row, s in zip(done, (better_row[1], worse_row[1]), strict=True)
  ]
  common = by_seed[0].keys() & by_seed[1].keys()
  seeds = (len(common), sum(sign * (by_seed[0][k] - by_seed[1][k]) > 0 for k in common))
  if comparison.p_value >= significance.LEVEL:
    return Verdict(claim, comparison, "not significant", seeds)
  word = "agrees" if sign * comparison.difference > 0 else "disagrees"
  split = 0 < seeds[1] < seeds[0]  # the training runs do not all order the rows alike
  return Verdict(claim, comparison, f"{word} (seeds split)" if split else word, seeds)


def _claims_table(table: Table, verdicts: Sequence[Verdict], split: str) -> list[str]:
  labels = {row.name: row.label for row in table.rows}
  rows = []
  for v in verdicts:
    c, decimals = v.comparison, 3 if v.claim.metric in ("aer", "exact_match") else 2
    claim = f"{labels[v.claim.better]} beats {labels[v.claim.worse]}"
    if c is None:
      ours = difference = p = ordered = "—"
    else:
      ordered = f"{v.seeds[1]} of {v.seeds[0]}"
      low, high = c.difference_interval
      ours = f"{c.score:.{decimals}f} vs {c.baseline:.{decimals}f}"
      difference = f"{c.difference:+.{decimals}f} [{low:+.{decimals}f}, {high:+.{decimals}f}]"
      p = f"{c.p_value:.3f}"
    rows.append(
      [
        claim,
        METRIC_LABELS[v.claim.metric],
        v.claim.paper or "(order only)",
        ours,
        difference,
        p,
        ordered,
        v.verdict,
      ]
    )
  headers = [
    "paper's claim",
    "metric",
    "paper",
    "ours",
    "difference [95%]",
    "p",
    "seeds in that order",
    "verdict",
  ]
  return [
    "Claims: each tested by a paired bootstrap of the better row's runs against the worse "
    f"row's ({significance.SAMPLES} resamples of the {split} sentences, seeds pooled); "
    f"agrees / disagrees at p < {significance.LEVEL}, else not significant. The interval and "
    f"p measure the {split} set's sampling; 'seeds in that order' counts the seeds whose two "
    "runs (same seed, both rows) are ordered as claimed, the spread over training runs.",
    "",
    report.markdown_table(headers, rows, text_columns=(0, 1, 2, 7)).rstrip(),
  ]


@dataclasses.dataclass(frozen=True)
class Rendered:
  """The markdown table and the BLEU-by-length curves of its finished runs."""

  markdown: str
  curves: dict[str, list[dict[str, float]]]
  verdicts: list[Verdict] = dataclasses.field(default_factory=list)


def render(table: Table, scale: str, trials: Mapping[str, list[Trial]], root: str) -> Rendered:
  """Our numbers from the trials' result.json files under `root`, beside the paper's."""
  setup = table.setup(scale)
  ours = [f"ours: {c.label} ({setup.data}, {c.split or setup.split})" for c in table.columns]
  headers = ["system", *table.paper_columns, *ours, "runs"]
  rows, notes, curves, outcomes_by_row = [], [], {}, {}
  for row in table.rows:
    if row.name not in trials:
      cells = ["—"] * len(table.columns) + ["not run"]
      notes.append(f"- **{row.label}**: not run here. {row.note}".rstrip())
    else:
      outcomes = outcomes_by_row[row.name] = [outcome(t, root) for t in trials[row.name]]
      done = [o for o in outcomes if o.result is not None]
      cells = []
      for column in table.columns:
        key = column.key.format(split=column.split or setup.split)
        values = [v for o in done if (v := _lookup(o.result, key)) is not None]
        cells.append("n/a" if done and not values else cell(values, column))
      cells.append(f"{len(done)}/{len(outcomes)}")
      if row.note:
        notes.append(f"- **{row.label}**: {row.note}")
      notes += [f"- **{row.label}** (`{o.trial.name}`): {o.problem}" for o in outcomes if o.problem]
      for o in done:
        bins = o.result.get("metrics", {}).get(setup.split, {}).get("bleu_by_length")
        if bins:
          seed = o.trial.overrides.get("seed")
          curves[row.label if seed is None else f"{row.label} (seed {seed})"] = bins
    rows.append([row.label, *row.paper, *cells])
  count = max((len(t) for t in trials.values()), default=1)
  seeds = f"mean ± std over {count} seeds" if count > 1 else "one run per row"
  text = [
    f"# {table.title} — scale `{scale}`",
    "",
    table.caption,
    "",
    f"Ours: {setup.data}, {setup.split} split, {seeds}; `{setup.config}` with the overrides "
    f"listed in `{table.name}/{scale}/sweep.json`. {setup.note}".rstrip(),
    "",
    f"Paper: {table.source}",
    "",
    CAVEAT,
    "",
    report.markdown_table(headers, rows).rstrip(),
  ]
  verdicts = [
    verdict(c, outcomes_by_row.get(c.better, []), outcomes_by_row.get(c.worse, []), setup.split)
    for c in table.claims
    if scale in c.scales
  ]
  if verdicts:
    text += ["", *_claims_table(table, verdicts, setup.split)]
  if notes:
    text += ["", "Notes:", *notes]
  if table.figure:
    text += [
      "",
      f"![{table.figure}]({table.name}.png)"
      if curves
      else "No finished run has BLEU by length yet, so no figure was drawn.",
    ]
  return Rendered("\n".join(text) + "\n", curves, verdicts)


def write(table: Table, scale: str, trials: Mapping[str, list[Trial]], out_dir: str) -> str:
  """Writes OUT/<table>.md (and OUT/<table>.png when the table has a figure); returns the
  markdown. The trials' runs are read from OUT/<table>/<scale>."""
  from attn_research.evaluation import plots  # matplotlib: only when writing

  rendered = render(table, scale, trials, os.path.join(out_dir, table.name, scale))
  os.makedirs(out_dir, exist_ok=True)
  runs.atomic_write(os.path.join(out_dir, f"{table.name}.md"), rendered.markdown)
  if table.figure and rendered.curves:
    title = f"{table.figure} — ours, {table.setup(scale).data}, scale {scale}"
    plots.save_bleu_by_length(os.path.join(out_dir, f"{table.name}.png"), rendered.curves, title)
  return rendered.markdown
