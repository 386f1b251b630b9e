"""Sweeps: many runs of one config file, each in its own run folder, with one summary table.

A sweep is a list of *members*; a member is a list of overrides ``(key, value)``
applied on top of the config (after the command line's ``--config.KEY=VALUE``).
Members come from

* the command line, as a grid: every ``--sweep KEY=V1,V2,...`` is an axis
  (``KEY=A:B`` or ``KEY=A:B:S`` is the integer range ``range(A, B, S)``) and
  the members are the Cartesian product of the axes, the first axis slowest;
* the config file, as code: a function ``sweep(add)`` that calls
  ``add(**{'optimizer.lr': 1e-3, 'seed': 0})`` once per member
  (``add(seed=0)`` also works for top-level keys).

When both are given, every config-defined member is combined with every grid
point. Values on the command line are text, parsed with the type of the
field; values from ``sweep(add)`` are Python values.

:func:`run_members` runs the members (members that the program can train as
one vmapped group — for 'ebm_gan', those differing only in seed and learning
rates — together, the others one after the other), never letting one
member's failure or divergence lose another's results, and rewrites
``sweep.csv`` and ``sweep.md`` after every member.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time
import traceback
from typing import Sequence

from ebm_gan.runner import distributed
from ebm_gan.runner import record
from ebm_gan.runner import shared_sweep
from ebm_gan.runner import tables
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.checkpoint import StorageError
from ebm_gan.runner.registry import ConfigError
from ebm_gan.runner.status import Status, worst

MAX_MEMBERS = 10_000  # a larger sweep is refused before its members are built
Member = list  # [(key, value)]


def split_values(text: str) -> list[str]:
  """Splits ``text`` at commas outside brackets: ``'(8,8),(16,)'`` → ``['(8,8)', '(16,)']``."""
  out, depth, cur = [], 0, []
  for ch in text:
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    if ch == "," and depth == 0:
      out.append("".join(cur).strip())
      cur = []
    else:
      cur.append(ch)
  out.append("".join(cur).strip())
  return out


_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(-?\d+))?$")


def parse_axis(spec: str) -> tuple[str, list[str]]:
  """``'optimizer.lr=1e-3,1e-4'`` → ``('optimizer.lr', ['1e-3', '1e-4'])``; ``'seed=0:4'``: 0..3.

  Raises:
    ConfigError: no ``=``, an empty key or value, or an empty range.
  """
  key, eq, values = spec.partition("=")
  key = key.strip()
  if key.startswith("config."):
    key = key[len("config."):]
  if not eq or not key or not values.strip():
    raise ConfigError(f"--sweep {spec!r} is not a sweep axis; expected KEY=V1,V2,... or "
                      "KEY=START:STOP[:STEP], e.g. --sweep optimizer.lr=1e-3,1e-4 "
                      "--sweep seed=0:4.")
  m = _RANGE.match(values.strip())
  if m:
    start, stop, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
    if step and len(range(start, stop, step)) > MAX_MEMBERS:
      raise _too_many(len(range(start, stop, step)), f"--sweep {spec!r}")
    texts = [str(v) for v in range(start, stop, step)] if step else []
    if not texts:
      raise ConfigError(f"--sweep {spec!r}: the range {values!r} is empty; "
                        "START:STOP[:STEP] means range(START, STOP, STEP).")
    return key, texts
  texts = split_values(values)
  if any(not t for t in texts):
    raise ConfigError(f"--sweep {spec!r} has an empty value; expected KEY=V1,V2,...")
  return key, texts


def expand_grid(specs: Sequence[str]) -> list[Member]:
  """The members of a grid: the product of the axes of ``specs`` (the first axis slowest)."""
  axes = [parse_axis(s) for s in specs]
  keys = [k for k, _ in axes]
  repeated = sorted({k for k in keys if keys.count(k) > 1})
  if repeated:
    raise ConfigError(f"--sweep names {repeated[0]!r} twice; give all its values in one "
                      "--sweep KEY=V1,V2,...")
  size = math.prod(len(v) for _, v in axes)
  if size > MAX_MEMBERS:
    raise _too_many(size, "the --sweep grid (" + " x ".join(str(len(v)) for _, v in axes) + ")")
  return [list(zip(keys, values)) for values in itertools.product(*(v for _, v in axes))]


def _too_many(size: int, what: str) -> ConfigError:
  return ConfigError(f"{what} has {size} members; at most {MAX_MEMBERS} are allowed in one "
                     "sweep. Split it into several sweeps (each in its own --workdir).")


def from_config(module) -> list[Member] | None:
  """The members declared by the config file's ``sweep(add)``, or None if it has none."""
  fn = getattr(module, "sweep", None)
  if fn is None:
    return None
  members: list[Member] = []

  def add(**overrides):
    if len(members) >= MAX_MEMBERS:
      raise _too_many(len(members) + 1, "the config file's sweep()")
    members.append(list(overrides.items()))

  try:
    fn(add)
  except ConfigError:
    raise
  except Exception as e:  # a broken sweep() is a user error with its reason
    raise ConfigError(f"the config file's sweep() failed: {type(e).__name__}: {e}") from None
  if not members:
    raise ConfigError("the config file's sweep() added no member; call add(**overrides).")
  return members


def combine(first: list[Member] | None, second: list[Member] | None) -> list[Member] | None:
  """Every member of ``first`` followed by every member of ``second`` (None: no sweep)."""
  if first is None or second is None:
    return check_distinct(first if second is None else second)
  shared = sorted({k for a in first for k, _ in a} & {k for b in second for k, _ in b})
  if shared:
    raise ConfigError(f"--sweep sets {shared[0]!r}, which the config file's sweep() sets too; "
                      "sweep other keys, or pass --no-sweep to replace the file's sweep.")
  if len(first) * len(second) > MAX_MEMBERS:
    raise _too_many(len(first) * len(second),
                    f"the config file's sweep() ({len(first)}) times the --sweep grid "
                    f"({len(second)})")
  return check_distinct([a + b for a in first for b in second])


def _same_value(value, text: str) -> bool:
  """Whether a member's override ``value`` is the command line's ``text`` (1e-3 is 0.001)."""
  if str(value) == text:
    return True
  try:
    return float(value) == float(text)
  except (TypeError, ValueError):
    return False


def values_of(members: list[Member], key: str, what: str) -> list:
  """Each member's override of ``key`` (members that do not set it are skipped).

  Raises ConfigError, naming ``what`` (the flag asking), when no member sets ``key``.
  """
  values = [dict(m)[key] for m in members if key in dict(m)]
  if not values:
    set_keys = sorted({k for m in members for k, _ in m})
    raise ConfigError(f"{what}: no sweep member sets {key!r}; the members set "
                      f"{', '.join(map(repr, set_keys))}.")
  return values


def select(members: list[Member] | None, specs: Sequence[str]) -> list[Member] | None:
  """The members whose override of each ``--only KEY=V1,V2,...`` key is one of its values.

  A subset of a declared sweep (one method's rows of a benchmark, say), to run apart, in its
  own --workdir. Raises ConfigError for a key no member sets, or when no member is left.
  """
  if not specs:
    return members
  if members is None:
    raise ConfigError("--only selects members of a sweep, but there is none: give the config "
                      "file's sweep(add) or --sweep axes.")
  for spec in specs:
    try:
      key, texts = parse_axis(spec)
    except ConfigError:
      raise ConfigError(f"--only {spec!r} is not a selection; expected KEY=V1,V2,... or "
                        "KEY=START:STOP[:STEP], e.g. --only dataset=8gaussians --only seed=0:2."
                        ) from None
    values = values_of(members, key, f"--only {spec!r}")
    members = [m for m in members if any(_same_value(dict(m).get(key), t) for t in texts)]
    if not members:
      found = ", ".join(dict.fromkeys(map(str, values)))
      raise ConfigError(f"--only {spec!r} leaves no sweep member; {key!r} takes the values "
                        f"{found}.")
  return members


def check_distinct(members: list[Member] | None) -> list[Member] | None:
  """``members``, or ConfigError if two of them set the same values (a wasted duplicate run)."""
  seen: dict[str, int] = {}
  for i, m in enumerate(members or ()):
    sig = repr(sorted((k, repr(v)) for k, v in m))
    if sig in seen:
      raise ConfigError(f"sweep members {seen[sig]} and {i} are the same run "
                        f"({' '.join(f'{k}={v}' for k, v in m) or 'no overrides'}); "
                        "each member must differ.")
    seen[sig] = i
  return members


def member_name(index: int, overrides: Member) -> str:
  """A folder name: the index then the overrides, e.g. ``003_optimizer.lr=0.001_seed=1``."""
  text = "_".join(f"{k}={v}" for k, v in overrides)
  text = re.sub(r"[^A-Za-z0-9._=+-]+", "-", text)[:120]
  return f"{index:03d}" + ("_" + text if text else "")


def write_table(workdir: str, rows: list[dict]) -> None:
  """Writes ``sweep.csv`` and ``sweep.md`` (one row per member), atomically."""
  tables.write(workdir, "sweep", rows)


def table_row(name: str, overrides: Member, summary: dict) -> dict:
  """One row of the sweep table: member, overrides, status, wall time, final scalar metrics."""
  row = {"member": name}
  row.update({k: tables.text(v) if not isinstance(v, str) else v for k, v in overrides})
  flat = record.flat_scalars(summary)
  row["status"] = flat.pop("status", Status.OK)  # a program that returned has run
  row["wall_s"] = flat.pop("wall_s", None)
  row.update(flat)
  return row


def _failed(e: BaseException, workdir: str | None, wall_s: float) -> dict:
  """A failed member's row; its traceback goes to ``workdir/error.txt`` (None: nowhere)."""
  try:
    if workdir is not None:
      os.makedirs(workdir, exist_ok=True)
      with open(os.path.join(workdir, "error.txt"), "w") as f:
        f.write("".join(traceback.format_exception(e)))
  except OSError:
    pass
  msg = " ".join(f"{type(e).__name__}: {e}".split())[:200]
  return {"status": Status.FAILED, "wall_s": wall_s, "error": msg}


def plan(programs: Sequence, built: Sequence) -> list[list[int]]:
  """Groups member indices that the program trains as one vmapped program.

  Members of a program with a ``group_key`` share a group when their keys are
  equal; every other member is a group of its own. Groups keep the members' order.
  """
  groups: dict[tuple, list[int]] = {}
  out: list[list[int]] = []
  for i, (program, b) in enumerate(zip(programs, built)):
    key = getattr(program, "group_key", None)
    if key is None:
      out.append([i])
      continue
    key = (program.__name__, key(b))
    if key in groups:
      groups[key].append(i)
    else:
      groups[key] = [i]
      out.append(groups[key])
  return out


def run_members(members: list[Member], programs: Sequence, built: Sequence, workdir: str,
                progress: bool = True, vectorise: bool = True,
                identities: Sequence[dict] | None = None) -> list[dict]:
  """Runs every member in ``workdir/<member_name>`` and writes the sweep table.

  Args:
    members: each member's overrides (for the table and the folder names).
    programs: each member's program (``run(built, workdir, progress) -> summary``,
      and optionally ``group_key(built)`` and ``run_group(built, workdirs, dir, progress)``).
    built: each member's built (validated) config, from its program's ``build``.
    workdir: the sweep folder.
    progress: show progress bars.
    vectorise: train members of one group as one vmapped program; if False every
      member runs on its own.
    identities: each member's run identity (:func:`workdir.run_identity`): its folder,
      and a group's checkpoint folder, are claimed for it while it runs (None: not claimed).

  Returns:
    The table rows, in member order; ``status`` is 'ok', 'diverged' or 'failed'.
  """
  names = [member_name(i, m) for i, m in enumerate(members)]
  dirs = [os.path.join(workdir, n) for n in names]
  rows: list[dict | None] = [None] * len(members)
  claims = workdir_lib.MemberClaims(names, dirs, identities)

  sharing = distributed.shared() is not None  # several processes, each with its share

  def done(i, summary):
    rows[i] = table_row(names[i], members[i], summary)
    if not sharing:
      write_table(workdir, [r for r in rows if r is not None])

  groups = plan(programs, built) if vectorise else [[i] for i in range(len(built))]
  _run_groups(shared_sweep.my_groups(groups) if sharing else groups, programs, built, dirs,
              names, workdir, claims, done, progress)
  if sharing:
    rows = shared_sweep.finish(workdir, groups, names, rows,
                               lambda i, s: table_row(names[i], members[i], s))
    if all(r["status"] != Status.RUNNING for r in rows):
      write_table(workdir, rows)
  return rows


def _run_groups(groups, programs, built, dirs, names, workdir, claims, done, progress) -> None:
  """Trains each group (vmapped, or member by member), calling ``done(i, summary)`` per member."""
  for group in groups:
    if len(group) > 1:
      t = time.perf_counter()
      group_dir = os.path.join(
          workdir, "vmap_" + names[group[0]][:3] + "-" + names[group[-1]][:3])
      try:
        with claims.group(group, group_dir):
          summaries = programs[group[0]].run_group(
              [built[i] for i in group], [dirs[i] for i in group], group_dir, progress=progress)
      except StorageError:  # a full disk stops the sweep: the next member would fail too
        raise
      except Exception:  # pylint: disable=broad-except
        # The vectorised program failed: isolate the culprit by running members one by one.
        print(f"vectorised group {group} failed after {time.perf_counter() - t:.1f}s; running "
              "its members one by one.")
      else:
        for i, s in zip(group, summaries):
          done(i, s)
        continue
    for i in group:
      done(i, _run_one(programs[i], built[i], dirs[i], claims, i, progress))


def _run_one(program, built, folder: str, claims: workdir_lib.MemberClaims, i: int, progress: bool) -> dict:
  """One member's summary, or its failed row (never an exception)."""
  t = time.perf_counter()
  try:
    claim = claims.member(i)
  except ConfigError as e:  # another run's folder, or in use: write nothing there
    return _failed(e, None, time.perf_counter() - t)
  try:
    with claim:
      summary = dict(program.run(built, folder, progress=progress))
    summary.setdefault("wall_s", time.perf_counter() - t)
  except StorageError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (ConfigError too: e.g. resume)
    summary = _failed(e, folder, time.perf_counter() - t)
  return summary


def exit_status(rows: list[dict]) -> str:
  """The sweep's status: :func:`ebm_gan.runner.status.worst` of its members'."""
  return worst(r["status"] for r in rows)


def describe(members: list[Member]) -> str:
  """A one-line description of a sweep for the console."""
  keys = []
  for m in members:
    for k, _ in m:
      if k not in keys:
        keys.append(k)
  return f"{len(members)} members over {', '.join(keys) or 'nothing'}"

