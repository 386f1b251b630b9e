"""A sweep's results across seeds: the mean ± std table and the panel figure of a benchmark.

Reads what a sweep wrote (``sweep.csv``: one row per member with its overrides and final
metrics; each member's ``samples.npz``) and writes, for the members grouped by every
override but ``seed``:

  <out>.md    one row per (method, dataset): seeds, then mean ± std over seeds of each
              metric in :data:`METRICS` (those the members report)
  <out>.csv   every member's row (the numbers behind the table, seed by seed)
  <out>.png   one panel per (method, dataset): the first seed's generator samples over
              held-out data

Under the table it states where the numbers came from (each member's ``provenance.json``):
the git revisions, commands and package versions (with those of later launches of a resumed
member), flagged when members disagree, and what the wall time measured (a sweep group's,
summed over a resumed run's segments; marked where the record of earlier segments is missing).

It reads files and formats numbers; the metrics themselves come from the members' summaries.
"""

from __future__ import annotations

import collections
import csv
import math
import os
from typing import Sequence

import numpy as np

from ebm_gan.runner import pictures
from ebm_gan.runner import record
from ebm_gan.runner import tables
from ebm_gan.runner.status import Status

# Summary column → (table heading, scale). high_quality is a fraction; shown in %. "modes" is
# the protocol's count (≥ 1 high-quality sample), "modes ≥ 20" the stricter one
# (metrics.mode_metrics).
METRICS = {
    "modes_covered": ("modes", 1.0), "modes_covered_20": ("modes ≥ 20", 1.0),
    "high_quality": ("high-quality %", 100.0),
    "stray": ("stray %", 100.0),
    "mode_kl": ("mode KL", 1.0), "fd_digits": ("FD-digits", 1.0),
    "fd_digits_floor": ("FD-digits floor", 1.0), "mmd2": ("MMD²", 1.0),
    "kl_data_model": ("KL(p‖q_m)", 1.0), "model_heldout_ll": ("held-out log q_m", 1.0),
    "model_near_modes": ("q_m near modes %", 100.0),
    "model_mode_factor": ("q_m mode factor", 1.0),
    "model_mass_outside": ("q_m off the box %", 100.0), "kl_generator_data": ("KL(q_f‖p)", 1.0),
    "generator_entropy": ("H(q_f)", 1.0), "data_entropy": ("H(p)", 1.0),
    "mcmc_high_quality": ("MCMC high-quality %", 100.0), "wall_s": ("wall s", 1.0),
}
GROUP_EXCLUDES = ("member", "seed", "status", "_folder")
PARTIAL_MARK = " †"  # on a wall time that misses the training before a member's resume


def read_rows(sweep_dir: str) -> list[dict]:
  """The rows of ``<sweep_dir>/sweep.csv``, each with its member's folder (``_folder``); a row
  without a ``dataset`` override gets the dataset of its member's ``config.json``."""
  with open(os.path.join(sweep_dir, "sweep.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    row["_folder"] = os.path.join(sweep_dir, row.get("member", ""))
    if not row.get("dataset"):
      row["dataset"] = _config_value(row["_folder"], "dataset")
  return rows


def _member_dir(sweep_dir: str, row: dict) -> str:
  return row.get("_folder") or os.path.join(sweep_dir, row.get("member", ""))


def _config_value(member_dir: str, key: str) -> str:
  found = record.read_json_object(os.path.join(member_dir, "config.json")) or {}
  return str(found.get(key, ""))


def _number(text: str) -> float:
  try:
    return float(text)
  except (TypeError, ValueError):
    return math.nan


def _partial_wall(row: dict) -> bool:
  """Whether a member's wall time misses training done before a resume: it counts from
  ``wall_s_from_step`` > 0 (no record of the earlier segments), or, in a run folder written
  before that field existed, from any resume at all."""
  if row.get("wall_s_from_step") not in (None, ""):
    return _number(row.get("wall_s_from_step")) > 0
  return _number(row.get("resumed_from")) > 0


def _value(row: dict, key: str) -> float:
  """A member's metric; its wall time is unknown (NaN) when it counts from its last step
  (a finished run evaluated again, whose earlier segments left no record)."""
  if key == "wall_s" and _number(row.get("wall_s_from_step")) >= _number(row.get("steps_done")):
    return math.nan
  return _number(row.get(key))


def _mean_std(values: Sequence[float]) -> str:
  v = np.asarray([x for x in values if math.isfinite(x)], np.float64)
  if v.size == 0:
    return ""
  return f"{v.mean():.4g} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2g}"


def _seed_by_seed(values: Sequence[float]) -> str:
  """The members' values in seed order, 'a / b / c' (4 significant digits; – for a missing one)."""
  return " / ".join(f"{x:.4g}" if math.isfinite(x) else "–" for x in values)


def _wall_cell(values: Sequence[float]) -> str:
  """The wall time: one number when the members share it (seeds that trained as one vmapped
  group, or one seed), else mean ± std over members that trained apart."""
  finite = {x for x in values if math.isfinite(x)}
  return f"{finite.pop():.4g}" if len(finite) == 1 else _mean_std(values)


def _override_keys(rows: Sequence[dict], metrics: Sequence[str]) -> list[str]:
  """The columns that are overrides: those before 'status' in each row's sweep table (the
  union, in order, when the rows come from several sweeps)."""
  keys: dict[str, None] = {}
  for row in rows:
    cols = list(row)
    end = cols.index("status") if "status" in cols else len(cols)
    keys.update(dict.fromkeys(c for c in cols[:end] if c not in GROUP_EXCLUDES
                              and c not in metrics))
  return list(keys)


def method_of(row: dict, keys: Sequence[str]) -> str:
  """A member's method: its ``label`` override, else its overrides but dataset and seed
  ('the config as given' when it has none)."""
  if row.get("label"):
    return row["label"]
  overrides = [f"{k}={row[k]}" for k in keys if k not in ("dataset", "label") and row.get(k)]
  return ", ".join(overrides) or "the config as given"  # a sweep over seeds alone


def aggregate(rows: Sequence[dict], by_seed: bool = False) -> list[dict]:
  """One row per (method, dataset): the number of seeds (ok/all) and mean ± std of each metric
  (``by_seed``: the seeds' values, 'a / b / c' in seed order)."""
  keys = _override_keys(rows, METRICS)
  groups: dict[tuple, list[dict]] = {}
  for row in sorted(rows, key=lambda r: _number(r.get("seed", 0))):
    groups.setdefault((method_of(row, keys), row.get("dataset", "")), []).append(row)
  cell = _seed_by_seed if by_seed else _mean_std
  out = []
  for (method, dataset), members in groups.items():
    ok = [m for m in members if m.get("status") == Status.OK]
    line = {"method": method, "dataset": dataset, "seeds ok": f"{len(ok)}/{len(members)}"}
    if by_seed:
      line["seeds ok"] += " (" + ", ".join(m.get("seed", "?") for m in ok) + ")"
    for key, (heading, scale) in METRICS.items():
      if any(key in m and m[key] != "" for m in ok):
        values = [_value(m, key) * scale for m in ok]
        line[heading] = _wall_cell(values) if key == "wall_s" else cell(values)
    if "wall s" in line and any(_partial_wall(m) for m in ok):
      line["wall s"] = (line["wall s"] or "–") + PARTIAL_MARK
    out.append(line)
  # one column order for every row (METRICS'), whichever rows report a metric
  found = {h for line in out for h in line}
  order = ["method", "dataset", "seeds ok"] + [h for h, _ in METRICS.values() if h in found]
  return [{h: line.get(h, "") for h in order} for line in out]


def _provenances(sweep_dir: str, rows: Sequence[dict]) -> list[dict]:
  return [record.read_provenance(_member_dir(sweep_dir, row)) for row in rows]


def _history(provenance: dict, read) -> str:
  """``read(launch)`` for the launch that trained from step 0, then ' → ' each later launch's
  value where it changed (a member resumed under other code, command or versions)."""
  values = [read(p) for p in [provenance] + list(provenance.get("resumed", []))]
  return " → ".join(v for i, v in enumerate(values) if i == 0 or v != values[i - 1])


def _counted(values: Sequence[str]) -> str:
  counts = collections.Counter(values)
  if len(counts) == 1:
    return f"`{next(iter(counts))}`"
  return "; ".join(f"`{v}` ({n} members)" for v, n in counts.most_common())


def _command_and_part(argv: Sequence[str]) -> tuple[str, str]:
  """A launch's command without ``--workdir`` and ``--only`` (where it ran, not what), and its
  ``--only`` selection ('' for none): the parts of one benchmark share one command."""
  kept, only, args = [], [], list(argv[1:])
  while args:
    arg = args.pop(0)
    name, eq, value = arg.partition("=")
    if name in ("--workdir", "--only"):
      value = value if eq else (args.pop(0) if args else "")
      if name == "--only":
        only.append(value)
    else:
      kept.append(arg)
  return "python -m experiments.run " + " ".join(kept), " --only ".join(only)


def provenance_notes(sweep_dir: str, rows: Sequence[dict]) -> list[str]:
  """Lines stating where the table's numbers came from, for under the table.

  The members' git revisions, commands (``python -m experiments.run`` and its flags but
  ``--workdir`` and ``--only``, whose selections are listed as the parts) and
  jax/jaxlib/python versions, each as ``first → later`` where a member was resumed under
  another, and flagged when the members disagree (a table mixing code or settings says so);
  and what "wall s" measured: the group's wall time when seeds trained as one
  program, summed over a resumed member's segments, and marked † where it misses the
  segments before a resume (their record is missing).
  """
  found = [p for p in _provenances(sweep_dir, rows) if p]
  notes = [f"Members: {len(rows)} ({sum(r.get('status') == Status.OK for r in rows)} ok); "
           f"provenance read for {len(found)}."]
  if found:
    readers = {
        "Git revision": lambda p: p.get("git_revision", "unknown"),
        "Command": lambda p: _command_and_part(p.get("argv", []))[0],
        "Versions": lambda p: ", ".join(f"{k} {p.get('versions', {}).get(k, '?')}"
                                        for k in ("jax", "jaxlib", "python")),
        "Platform": lambda p: p.get("platform", "?"),
        "Devices": lambda p: p.get("devices", "not recorded")}
    for what, read in readers.items():
      values = [_history(p, read) for p in found]
      mixed = (" — **the members differ**" if len(set(values)) > 1
               else " — **changed when resumed**" if " → " in values[0] else "")
      notes.append(f"{what}{mixed}: {_counted(values)}")
    parts = list(dict.fromkeys(_command_and_part(p.get("argv", []))[1] for p in found))
    if len(parts) > 1 or parts[0]:
      named = [f"`--only {part}`" if part else "the whole sweep" for part in parts]
      notes.append("Parts, each run apart in its own --workdir: " + "; ".join(named))
  group = max((_number(r.get("vectorised_with")) for r in rows), default=math.nan)
  if group > 1:
    notes.append(f"wall s: the wall time of the group that trained up to {group:g} "
                 "seeds as one program (the same for each of its members).")
  if any(_partial_wall(r) for r in rows if r.get("status") == Status.OK):
    notes.append(f"{PARTIAL_MARK.strip()}: some of these members were resumed from a "
                 "checkpoint without a record of the earlier segments' wall time; theirs "
                 "counts only from the resume.")
  return notes


def panel_figure(path: str, sweep_dir: str, rows: Sequence[dict]) -> str | None:
  """One panel per (method, dataset) with the lowest seed's samples; None if none were saved."""
  keys = _override_keys(rows, METRICS)
  first: dict[tuple, dict] = {}
  for row in sorted(rows, key=lambda r: _number(r.get("seed", 0))):
    first.setdefault((method_of(row, keys), row.get("dataset", "")), row)
  methods = list(dict.fromkeys(m for m, _ in first))
  datasets = list(dict.fromkeys(d for _, d in first))
  found = {k: os.path.join(_member_dir(sweep_dir, r), "samples.npz") for k, r in first.items()}
  found = {k: p for k, p in found.items() if os.path.exists(p)}
  if not found:
    return None
  return pictures.sample_panels(path, methods, datasets, found)


def figure_gap(rows: Sequence[dict], most: int = 6) -> str:
  """Why :func:`panel_figure` drew nothing, in one line: the members without a summary
  (unfinished, failed or interrupted) and those whose summary came without samples (not
  finite, so not saved); at most ``most`` names of each, then a count."""
  def named(members):
    names = [m["_folder"] for m in members]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
  unfinished = [r for r in rows
                if not os.path.isfile(os.path.join(r["_folder"], record.SUMMARY_JSON))]
  unsaved = [r for r in rows if r not in unfinished]
  parts = []
  if unfinished:
    parts.append(f"without a summary (unfinished or failed): {named(unfinished)}")
  if unsaved:
    parts.append(f"with a summary but no samples (not finite): {named(unsaved)}")
  return ("no figure drawn: no member saved samples.npz. Members " + "; ".join(parts)
          + ". The table is written without the figure.")


def write(sweep_dirs: str | Sequence[str], out_stem: str, title: str = "",
          by_seed: bool = False) -> list[str]:
  """Writes ``<out_stem>.md``, ``<out_stem>.csv`` (and ``.png`` when members saved samples);
  returns the paths.

  ``sweep_dirs``: one sweep folder, or several whose members are tabled together (parts of
  one benchmark run apart, e.g. with ``--only``). ``by_seed``: the table's cells list every
  seed's value instead of their mean ± std.
  """
  dirs = [sweep_dirs] if isinstance(sweep_dirs, str) else list(sweep_dirs)
  rows = [row for d in dirs for row in read_rows(d)]
  sweep_dir = dirs[0]
  lines = aggregate(rows, by_seed)
  os.makedirs(os.path.dirname(os.path.abspath(out_stem)), exist_ok=True)
  md = out_stem + ".md"
  tables.write_text_atomically(
      md, (f"# {title}\n\n" if title else "") + tables.markdown(lines) + "\n\n"
      + "\n".join(f"- {note}" for note in provenance_notes(sweep_dir, rows)) + "\n")
  csv_path = write_member_rows(out_stem + ".csv", rows)
  png = panel_figure(out_stem + ".png", sweep_dir, rows)
  return [md, csv_path] + ([png] if png else [])


def write_member_rows(path: str, rows: Sequence[dict]) -> str:
  """Every member's row (its overrides, status and final metrics: the numbers behind the
  table, seed by seed) as one CSV, the union of the sweeps' columns in order."""
  columns = list(dict.fromkeys(c for row in rows for c in row if c != "_folder"))
  tables.write_text_atomically(path, tables.csv_text(rows, columns))
  return path
