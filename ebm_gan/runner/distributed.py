"""Several processes (hosts) as one run: ``jax.distributed`` from the config, process 0 writes.

The config's ``parallel`` block says how the processes find each other:

* ``coordinator=''`` (the default): one process, ``jax.distributed`` is not used.
* ``coordinator='auto'``: ``jax.distributed.initialize()`` with no arguments, so
  jax detects the cluster itself (Cloud TPU pods, Slurm, Open MPI, or the
  ``JAX_COORDINATOR_ADDRESS`` variable with the process count and id given below).
* ``coordinator='HOST:PORT'``: the address of process 0's coordinator; then
  ``num_processes`` (≥ 1) and ``process_id`` (0 … num_processes − 1) are required.

:func:`initialize` runs before anything queries a device (the launcher calls it
right after the config is resolved), so ``jax.devices()`` — and the 1-D mesh of
``ebm_gan.parallel`` over ``parallel.devices=0`` — spans every process's devices.
Every process runs the same program on the global mesh. Only process 0
(:func:`is_writer`) claims, locks and writes the run folder; checkpoints are
saved and restored by every process, as orbax coordinates them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import zlib

import jax
import numpy as np

from ebm_gan.runner.registry import ConfigError

_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:(\d{1,5})$")
_initialized = False
_share: tuple[int, int] | None = None  # (process_id, num_processes) of a sweep shared by processes


def settings(parallel) -> dict | None:
  """The checked ``jax.distributed.initialize`` arguments of a ``parallel`` block (None: one process).

  Raises:
    ConfigError: naming the field, its value and what is allowed.
  """
  coordinator = parallel.get("coordinator", "")
  n, pid = parallel.get("num_processes", 0), parallel.get("process_id", -1)
  for key, value, low in (("num_processes", n, 0), ("process_id", pid, -1)):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise ConfigError(f"parallel.{key}={value!r} is not allowed; expected an integer >= {low} "
                        f"({low}: {'detected by jax' if coordinator == 'auto' else 'unset'}).")
  if not isinstance(coordinator, str):
    raise ConfigError(f"parallel.coordinator={coordinator!r} is not allowed; expected '' (one "
                      "process), 'auto' (jax detects the cluster) or 'HOST:PORT'.")
  if coordinator == "":
    if n > 1 or pid > 0:
      raise ConfigError(f"parallel.num_processes={n} / parallel.process_id={pid} need "
                        "parallel.coordinator='HOST:PORT' (or 'auto'); it is ''.")
    return None
  if coordinator == "auto":
    out = {}
  else:
    match = _HOST_PORT.match(coordinator)
    if not match or not 0 < int(match.group(1)) < 65536:
      raise ConfigError(f"parallel.coordinator={coordinator!r} is not allowed; expected '' (one "
                        "process), 'auto' (jax detects the cluster) or 'HOST:PORT' with a port "
                        "in 1..65535, e.g. '10.0.0.1:1234'.")
    if n < 1 or pid < 0:
      raise ConfigError(f"parallel.coordinator={coordinator!r} needs parallel.num_processes >= 1 "
                        f"and parallel.process_id >= 0; they are {n} and {pid}.")
    out = {"coordinator_address": coordinator}
  if n:
    out["num_processes"] = n
  if pid >= 0:
    out["process_id"] = pid
  if n and pid >= n:
    raise ConfigError(f"parallel.process_id={pid} is not allowed with parallel.num_processes={n}; "
                      f"expected 0..{n - 1}.")
  return out


def initialize(parallel) -> None:
  """Joins the processes named by a ``parallel`` block (once per process; no-op for one process).

  On CPU the cross-process collectives use gloo.
  """
  global _initialized
  args = settings(parallel)
  if args is None or _initialized:
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(**args)
  except Exception as e:  # unreachable coordinator, a cluster jax cannot detect, ...
    msg = " ".join(str(e).split())[:300]
    raise ConfigError(f"parallel.coordinator={parallel.coordinator!r}: jax.distributed could not "
                      f"start ({type(e).__name__}: {msg}).") from None
  _initialized = True


# Words of a collective's error when its peer process is gone (gloo, NCCL, the coordinator).
_PEER_FAILURES = ("Gloo", "NCCL", "Connection reset", "Connection closed", "by peer",
                  "heartbeat", "UNAVAILABLE")


class PeerLost(RuntimeError):
  """Another process of this run stopped: a cross-process collective failed."""


@contextlib.contextmanager
def peers_watched():
  """Turns the error of a collective whose peer process is gone into :class:`PeerLost`.

  With several processes, a collective fails within seconds when a peer dies (gloo:
  "connection reset by peer"): a step's all-reduce (a ``JaxRuntimeError`` when the result is
  read) or orbax's barrier before a save (a ``ValueError``). Other errors, and any error of a
  single process, pass unchanged.
  """
  try:
    yield
  except (jax.errors.JaxRuntimeError, ValueError) as e:
    if jax.process_count() == 1 or not any(w in str(e) for w in _PEER_FAILURES):
      raise
    first = " ".join(str(e).split())[:240]
    raise PeerLost(f"another process of this run stopped, so process {jax.process_index()} of "
                   f"{jax.process_count()} stops too ({first}). Every checkpoint written so "
                   "far is kept.") from None


def leave(status: int) -> None:
  """Exits at once with ``status``, flushing the console: after a peer was lost, jax's exit
  handler would wait for it at a shutdown barrier (up to its heartbeat timeout) and then
  abort with a stack dump."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


# Fields that may differ between the processes of one run.
PER_PROCESS = ("parallel.process_id",)


def check_agreement(fields: dict) -> None:
  """Refuses to go on unless every process was started with the same ``fields`` (the flat
  resolved config, and a sweep's members), but for :data:`PER_PROCESS`.

  Each process gathers every process's hashes of its fields' names and values (a small
  all-gather); all of them find the same difference and raise the same ConfigError, naming
  the keys, so none is left waiting in a collective of a program the others never run.
  """
  if jax.process_count() == 1:
    return
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  keys = sorted(k for k in fields if k not in PER_PROCESS)

  def gather(numbers):
    return np.asarray(multihost_utils.process_allgather(np.asarray(numbers, np.int32)))

  names = gather([len(keys), _hash(",".join(keys))])
  if not (names == names[0]).all():
    raise ConfigError("parallel: the processes were started with configs that have different "
                      "fields; every process must run the same config file, overrides and sweep "
                      f"(only {', '.join(PER_PROCESS)} may differ).")
  values = gather([_hash(f"{k}={fields[k]!r}") for k in keys])
  differ = [k for k, column in zip(keys, values.T) if not (column == column[0]).all()]
  if differ:
    shown = ", ".join(f"{k} (process {jax.process_index()}: {fields[k]!r})" for k in differ[:5])
    raise ConfigError(f"parallel: the processes were started with different configs: {shown} "
                      f"differ{'s' if len(differ) == 1 else ''} between them; every process must "
                      "run the same config file, overrides and sweep (only "
                      f"{', '.join(PER_PROCESS)} may differ).")


def _hash(text: str) -> int:
  return zlib.crc32(text.encode()) & 0x7FFFFFFF


def process_count() -> int:
  """How many processes run this program (1 when not distributed)."""
  return jax.process_count()


def is_writer() -> bool:
  """Whether this process writes the folders of what it trains: process 0 of a run that spans
  the processes (the only one when not distributed), or any process of a shared sweep."""
  return _share is not None or jax.process_index() == 0


def sweep_share(parallel) -> tuple[int, int] | None:
  """``(process_id, num_processes)`` when a sweep is launched on several processes, else None.

  A sweep's members are independent runs, so they are shared out without ``jax.distributed``:
  each process trains its own members on its own devices (:mod:`ebm_gan.runner.shared_sweep`).

  Raises:
    ConfigError: the block is invalid, or the processes are not named (coordinator 'auto').
  """
  args = settings(parallel)
  if args is None:
    return None
  if "num_processes" not in args or "process_id" not in args:
    raise ConfigError("parallel.coordinator='auto' is not allowed for a sweep: its members are "
                      "shared out over the processes by number, so give parallel.num_processes "
                      "and parallel.process_id (0 .. num_processes - 1) on every process.")
  return args["process_id"], args["num_processes"]


def share(process_id: int, num_processes: int) -> None:
  """From now on this process trains its share of a sweep alone (:func:`sweep_share`)."""
  global _share
  _share = (process_id, num_processes)


def shared() -> tuple[int, int] | None:
  """``(process_id, num_processes)`` of the sweep this process shares, or None."""
  return _share


@contextlib.contextmanager
def private_folders(workdirs):
  """``workdirs`` on process 0; elsewhere, fresh temporary folders deleted on exit.

  The processes other than 0 run the same program (their records are equal to
  process 0's), so what they would write is sent to folders of their own
  rather than mixed into the run folder.
  """
  if is_writer():
    yield list(workdirs)
    return
  root = tempfile.mkdtemp(prefix=f"ebm_gan_process{jax.process_index()}_")
  try:
    private = [os.path.join(root, str(i)) for i in range(len(workdirs))]
    for d in private:
      os.makedirs(d)
    yield private
  finally:
    shutil.rmtree(root, ignore_errors=True)
