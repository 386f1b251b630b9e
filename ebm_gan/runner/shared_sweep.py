"""A sweep shared by several processes (hosts): the file system coordinates, not jax.distributed.

A sweep's members are independent runs, so nothing has to be computed across processes. The
same command is started on every process with ``parallel.num_processes=P`` and
``parallel.process_id=p`` (and the same ``--workdir`` on a shared file system):

* process 0 claims the sweep folder (marker and lock, like a one-process sweep); the others
  wait for its marker and refuse (exit 2) unless it names the same sweep;
* process p trains groups p, p + P, p + 2P, ... of the sweep's plan, each on p's own devices,
  each member claimed (locked) while it runs; it holds ``.processes/<p>``'s lock while it lives;
* when p has done its share, it reads every member's ``summary.json``. If all are there it
  writes the sweep table (the last process to finish writes the complete one). A member that
  is not done belongs to a process that either still runs (and will write the table) or does
  not: then p stops with :class:`~ebm_gan.runner.distributed.PeerLost` (exit 6) naming the
  members; that process's command resumes them, and finished members keep their results.
"""

from __future__ import annotations

import os
import time

from ebm_gan.runner import distributed
from ebm_gan.runner import record
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.registry import ConfigError
from ebm_gan.runner.status import Status

PROCESSES = ".processes"  # in the sweep folder: one locked folder per live process
CLAIM_WAIT_S = 600  # how long a process waits for process 0 to claim the sweep folder


def my_groups(groups: list) -> list:
  """This process's share of the plan's groups: group g goes to process g mod P."""
  pid, n = distributed.shared()
  return [g for i, g in enumerate(groups) if i % n == pid]


def owners(groups: list, size: int) -> list[int]:
  """The process that trains each of ``size`` members under :func:`my_groups`."""
  n = distributed.shared()[1]
  out = [0] * size
  for i, group in enumerate(groups):
    for member in group:
      out[member] = i % n
  return out


def await_claim(workdir: str, identity: dict, wait_s: float = CLAIM_WAIT_S) -> None:
  """Waits until process 0 has marked ``workdir`` for this sweep; ConfigError if it names
  another sweep (the processes were started differently) or never appears."""
  deadline = time.monotonic() + wait_s
  while workdir_lib.read_marker(workdir) is None:
    if time.monotonic() > deadline:
      raise ConfigError(f"--workdir={workdir!r}: process 0 has not claimed this sweep's folder "
                        f"within {wait_s:.0f} s; start the same command with "
                        "--config.parallel.process_id=0 (on a file system every process sees).")
    time.sleep(0.5)
  workdir_lib.check(workdir, identity)


def hold(workdir: str) -> workdir_lib.Lock:
  """The lock this process holds on ``.processes/<p>`` while it lives (others read it)."""
  folder = os.path.join(workdir, PROCESSES, str(distributed.shared()[0]))
  os.makedirs(folder, exist_ok=True)
  return workdir_lib.Lock(folder)


def claim_sweep(workdir: str, names: list[str], identities: list[dict], share=None,
                dry_run: bool = False):
  """Locks and marks the sweep folder, after checking every member folder already there.

  ``names`` and ``identities`` are the members' folder names and run identities. Shared by
  processes (``share``): process 0 claims it; the others wait for its marker and check it
  names this sweep; each then holds the lock of its own ``.processes/<id>``. A dry run
  checks what the claim checks (the folders, not the peers' locks), writes nothing and
  returns None.
  """
  programs = ",".join(sorted({i["program"] for i in identities}))
  identity = workdir_lib.group_identity(programs, "sweep", list(zip(names, identities)))

  def check_members():
    for name, member in zip(names, identities):
      workdir_lib.check(os.path.join(workdir, name), member)

  if dry_run:
    workdir_lib.check_claim(workdir, identity, in_use_ok=share is not None)
    check_members()
    return None
  if share is not None and share[0] > 0:
    await_claim(workdir, identity)
    return hold(workdir)
  lock = workdir_lib.claim(workdir, identity)
  try:
    check_members()
  except ConfigError:
    lock.release()
    raise
  return lock if share is None else _Both(lock, hold(workdir))


class _Both:
  """Two locks released together (process 0's sweep folder and its ``.processes/0``)."""

  def __init__(self, *locks):
    self.locks = locks

  def release(self) -> None:
    for lock in self.locks:
      lock.release()


def finish(workdir: str, groups: list, names: list[str], rows: list, row_of) -> list:
  """Every member's row once this process's share is done: its own ``rows``, the others read
  from their folders (``row_of(i, summary)``). Writes the sweep table when every member is
  done; refuses with :class:`PeerLost` when a member's process is no longer running.

  Returns:
    The rows; a member still running in another process has the row ``status='running'``.
  """
  owner = owners(groups, len(names))
  for i, name in enumerate(names):
    if rows[i] is None and (summary := _summary(os.path.join(workdir, name))) is not None:
      rows[i] = row_of(i, summary)
  waiting = [i for i, r in enumerate(rows) if r is None]
  lost = [i for i in waiting
          if not workdir_lib.is_locked(os.path.join(workdir, PROCESSES, str(owner[i])))]
  if lost:
    by = ", ".join(str(p) for p in sorted({owner[i] for i in lost}))
    shown = ", ".join(names[i] for i in lost[:6]) + (f", ... ({len(lost)})" if len(lost) > 6 else "")
    raise distributed.PeerLost(
        f"process {by} of this sweep is not running (it stopped, or has not started yet), and "
        f"its members {shown} are not done; the members done are kept. Start its command (this "
        f"one with --config.parallel.process_id={by.split(',')[0]}) to finish them.")
  for i in waiting:
    rows[i] = row_of(i, {"status": Status.RUNNING, "error": f"running in process {owner[i]}"})
  return rows


def _summary(folder: str) -> dict | None:
  """A member's summary as its process left it: ``summary.json``, a failed row from
  ``error.txt``, or None when it is not done."""
  summary = record.read_json_object(os.path.join(folder, record.SUMMARY_JSON))
  if summary is not None:
    return summary
  try:
    with open(os.path.join(folder, "error.txt")) as f:
      lines = f.read().splitlines()
  except OSError:
    return None
  start = max([i for i, line in enumerate(lines) if line.startswith("Traceback")], default=-1)
  error = next((line for line in lines[start + 1:] if line and not line[0].isspace()), "failed")
  return {"status": Status.FAILED, "error": " ".join(error.split())[:200]}
