"""What a run prints on the console: phase lines, the progress bar's losses, the sweep table.

A run is never silent for long: each phase (initialising, compiling,
training, evaluating, pictures) is announced by :func:`phase` with the time
since the launcher started; the training bar (tqdm, one per run or sweep
group) shows steps/s and the main losses (:func:`postfix`). A sweep's console
table (:func:`sweep_table`) keeps the member, the swept keys that vary, the
status and the result metrics; every column stays in ``sweep.csv``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from tqdm import tqdm

from ebm_gan.runner import interrupts
from ebm_gan.runner import tables

_START = time.perf_counter()
# The sweep table's result columns, in this order, where a program reports them.
RESULTS = ("modes_covered", "modes_covered_20", "high_quality", "mode_kl", "l3", "steps_per_s",
           "wall_s", "error")


def phase(text: str, enabled: bool = True) -> None:
  """Prints ``[  12.3 s] text`` (seconds since the launcher started), flushed.

  A new phase is a safe place to stop: a Ctrl-C or SIGTERM held while XLA ran is raised
  here (``interrupts.deliver``).
  """
  interrupts.deliver()
  if enabled:
    # tqdm.write: above a live progress bar, which is redrawn below it.
    tqdm.write(f"[{time.perf_counter() - _START:7.1f} s] {text}", file=sys.stderr)


def _short(name: str) -> str:
  return name[len("loss_"):] if name.startswith("loss_") else name


def postfix(metrics: dict, alive=None) -> dict:
  """The bar's losses: each ``loss_*`` and ``l3`` at the chunk's last step.

  For a group (metrics [K, n]) the median over the members still ``alive``.
  """
  out = {}
  for name, values in metrics.items():
    if not (name.startswith("loss_") or name == "l3"):
      continue
    v = np.asarray(values, np.float64)
    last = v[..., -1]
    if last.ndim:
      last = last[np.asarray(alive, bool)] if alive is not None else last
      last = np.median(last) if last.size else np.nan
    out[_short(name)] = f"{float(last):.3g}"
  return out


# The bar until steady chunks have been timed: no rate, no ETA (the first chunk pays for
# compilation and warm-up, and an ETA from it would be several times too long).
WARMING_UP = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, timing…{postfix}]"


def restart_clock(bar) -> None:
  """Forgets the time the ``bar`` has run so far (compilation, the first chunk), so that its
  rate and ETA come from the chunks that follow alone; shows the ETA from then on."""
  done = bar.n
  bar.reset(total=bar.total)
  bar.initial = bar.n = bar.last_print_n = done
  bar.bar_format = None
  bar.refresh()


def advance(bar, n: int, last: bool, losses: dict) -> None:
  """Moves the tqdm ``bar`` on by ``n`` steps showing ``losses``; closes it after the ``last``.

  The losses are set before the move, and the last move is drawn by ``close()`` alone,
  so that the bar's final line is printed once, with the final losses.
  """
  bar.set_postfix(losses, refresh=False)
  if last:
    bar.n += n
    bar.close()
  else:
    bar.update(n)


def sweep_table(rows: list[dict], members) -> str:
  """The console's sweep table: member, the swept keys whose values vary, status, results."""
  swept = []
  for m in members:
    swept += [k for k, _ in m if k not in swept]
  varying = [k for k in swept if len({tables.text(r.get(k)) for r in rows}) > 1]
  present = {c for r in rows for c in r}
  cols = ["member"] + varying + ["status"] + [c for c in RESULTS if c in present]
  short = [dict(r, member=r["member"][:3]) for r in rows]
  return tables.markdown(short, cols)


def dry_run(plan: dict) -> str:
  """What a ``--dry-run`` checked: the run (or the sweep's members) and where it would write."""
  if plan["sweep"] is None:
    return (f"dry run: the config is valid and its objects were built; nothing compiled. "
            f"A run would write to {plan['workdir']}\n")
  return (f"dry run: {len(plan['sweep'])} sweep members are valid and their objects were built; "
          f"nothing compiled. The sweep would write to {plan['workdir']}\n")
