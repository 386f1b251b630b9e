"""Checkpoints of a run's state with orbax: periodic, atomic, bounded, resumable.

A :class:`Checkpoints` object wraps one ``orbax.checkpoint.CheckpointManager``
rooted at ``<workdir>/checkpoints``. Saves are synchronous and atomic (orbax
writes into a temporary folder and renames it when complete), so a process
killed at any moment — even with SIGKILL in the middle of a save — leaves only
complete checkpoints behind; at most ``max_to_keep`` are kept.

Any pytree of arrays can be saved (a :class:`ebm_gan.train.TrainState`, or a
dict holding one plus extra arrays). Restoring needs a *target* with the same
structure, shapes and dtypes (e.g. the freshly initialised state), so restored
leaves have exactly the saved bits and dtypes.

Every step is sealed with the checksums of its files once orbax has finished
it (:mod:`ebm_gan.runner.integrity`). :meth:`Checkpoints.restore` verifies the
newest step first; a damaged one (flipped bytes, a truncated or unreadable
file, a save that never finished) is moved to ``<workdir>/checkpoints.damaged/``
with a warning naming the step and the damage, and the newest intact step is
restored instead. When no step is intact nothing is moved and the run is
refused, unless every step is this runner's own save stopped before its seal
(a run killed during its first save): those are set aside too and the run
starts from step 0. Foreign files in a step folder are never moved. A checkpoint
folder that cannot be used — foreign files, a state of another model, no intact
step — is reported as a :class:`~ebm_gan.runner.registry.ConfigError` naming the
folder, never a traceback.

A save that fails for lack of disk space or another I/O error raises
:class:`StorageError`, a paragraph naming the folder, the free space and the
last intact step (the launcher's exit status 5). Ctrl-C and SIGTERM arriving
during a save are held until the save is complete and sealed, then delivered.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import signal
import sys
import threading
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ebm_gan.runner import integrity
from ebm_gan.runner.registry import ConfigError

SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "checkpoints.damaged"
FOREIGN = ("it was not written by this runner (neither orbax's metadata nor a checksum), and "
           "is kept there so that checkpoint rotation never deletes it")
ORBAX_FINISHED = ("_CHECKPOINT_METADATA", "commit_success.txt")  # written when orbax finalises
# Errors that mean "the disk (or file system) could not take the write", not a bug.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)
_STORAGE_WORDS = ("RESOURCE_EXHAUSTED", "No space left", "Disk quota", "Read-only file system",
                  "Input/output error")

# orbax logs every save at INFO/WARNING level; a run's own log is enough.
logging.getLogger("absl").setLevel(logging.ERROR)


def _corrupt(directory: str, why: str) -> ConfigError:
  return ConfigError(
      f"the checkpoint folder {directory!r} cannot be used to resume: {why}. Move that folder "
      "(or the broken step inside it) aside to start over, or pass another --workdir.")


class StorageError(Exception):
  """A write the run needs failed for lack of space or an I/O error (one paragraph)."""


def free_space(path: str) -> str:
  """The free space of the file system holding ``path`` (or its nearest existing parent)."""
  while path and not os.path.exists(path):
    path = os.path.dirname(path)
  try:
    return f"{shutil.disk_usage(path or '.').free / 2**20:.1f} MiB free"
  except OSError:
    return "free space unknown"


def storage_error(what: str, folder: str, last_step: int | None, cause: BaseException,
                  needed_bytes: int | None = None) -> StorageError:
  """The paragraph for a failed write: what, where, the free space, the room it needs
  (``needed_bytes``, when known) and how to go on."""
  reason = " ".join(str(cause).split())[:200] or type(cause).__name__
  needed = (f" It needs at least {needed_bytes / 2**20:.2f} MiB (the arrays alone)."
            if needed_bytes is not None else "")
  kept = (f"The last intact checkpoint is step {last_step}; free some space and run the same "
          "command to resume from it." if last_step is not None else
          "No checkpoint was completed yet; free some space and run the same command to "
          "start again.")
  return StorageError(f"could not {what} in {folder!r} ({free_space(folder)}): {reason}."
                      f"{needed} {kept}")


def is_storage_failure(e: BaseException) -> bool:
  """Whether ``e`` (or an exception it was raised from) is a full disk or an I/O error."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
      return True
    if any(w in str(e) for w in _STORAGE_WORDS):
      return True
    e = e.__cause__ or e.__context__
  return False


@contextlib.contextmanager
def signals_held():
  """Holds SIGINT and SIGTERM inside the block; delivers them (to the old handlers) after it.

  Used around a save, so Ctrl-C cannot tear orbax's writer threads apart half-way
  (which printed their tracebacks); outside the main thread it does nothing.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  caught, previous = [], {}

  def hold(signum, frame):
    del frame
    caught.append(signum)

  for sig in (signal.SIGINT, signal.SIGTERM):
    previous[sig] = signal.signal(sig, hold)
  try:
    yield
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
    for sig in dict.fromkeys(caught):
      handler = previous[sig]
      if callable(handler):
        handler(sig, None)
      elif handler == signal.SIG_DFL:
        signal.raise_signal(sig)


@contextlib.contextmanager
def _orbax_output_held():
  """Holds what orbax's threads print on stderr during a save, and mutes logging; after the
  block the held text is printed, unless the block set ``held["drop"]``. A full disk made
  orbax and asyncio print ~450 lines of tracebacks before the one paragraph that says what
  happened; :meth:`Checkpoints.save` drops them then."""
  held, buffer = {"drop": False}, io.StringIO()
  disabled = logging.root.manager.disable
  logging.disable(logging.CRITICAL)
  try:
    with contextlib.redirect_stderr(buffer):
      yield held
  finally:
    logging.disable(disabled)
    if not held["drop"] and buffer.getvalue():
      sys.stderr.write(buffer.getvalue())


class Checkpoints:
  """Saves and restores a run's state under ``<workdir>/checkpoints``.

  Args:
    workdir: the run folder.
    every: save when a chunk crosses a multiple of ``every`` steps (and at the end).
    max_to_keep: number of most recent checkpoints kept on disk.
  """

  def __init__(self, workdir: str, every: int, max_to_keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, SUBDIR))
    self.every = every
    if os.path.exists(self.directory) and not os.path.isdir(self.directory):
      raise _corrupt(self.directory, "it is a file, not a folder")
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    except Exception as e:  # orbax reads the folder's metadata here
      if is_storage_failure(e):
        raise storage_error("create the checkpoint folder", self.directory, None, e) from None
      raise _corrupt(self.directory, f"{type(e).__name__}: {e}") from None

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint (intact or not), or None."""
    return self._manager.latest_step()

  def step_folder(self, step: int) -> str:
    """The folder of checkpoint ``step``."""
    return os.path.join(self.directory, str(step))

  def should_save(self, before: int, after: int) -> bool:
    """Whether a chunk taking the run from step ``before`` to ``after`` crosses a save point."""
    return after // self.every > before // self.every

  def save(self, step: int, tree: Any) -> None:
    """Writes ``tree`` as checkpoint ``step`` and seals it with its checksums.

    Atomic (orbax renames a finished temporary folder; the checksum file is
    renamed into place after it); replaces nothing that exists. Signals are held
    until it is done.

    Raises:
      StorageError: the disk is full or the write failed (the older steps are kept).
    """
    if step in self._manager.all_steps():
      return
    with signals_held(), _orbax_output_held() as held:
      try:
        self._manager.save(step, args=ocp.args.StandardSave(tree))
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
          integrity.seal(self.step_folder(step))
      except Exception as e:
        if not is_storage_failure(e):
          raise
        held["drop"] = True  # orbax's and asyncio's tracebacks of it: the paragraph says it
        raise storage_error(f"save checkpoint step {step}", self.directory,
                            newest_intact_step(os.path.dirname(self.directory)), e,
                            sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))) from None

  def _newest_intact(self) -> tuple[int, list[tuple[int, str]]]:
    """The newest intact step, and the (step, damage) of the newer ones; refuses when none."""
    damaged = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      why = integrity.damage(self.step_folder(step))
      if why is None:
        return step, damaged
      damaged.append((step, why))
    if not damaged:
      raise _corrupt(self.directory, "it holds no complete checkpoint")
    listed = "; ".join(f"step {s}: {why}" for s, why in damaged)
    raise _corrupt(self.directory, f"no checkpoint step in it is intact ({listed})")

  def set_aside_unfinished(self) -> None:
    """Sets every step aside when none is intact and none has more damage than an unfinished
    save (a run killed during its first saves): the run then starts from step 0, as if
    no save had begun. With an intact step, or a damaged one, it does nothing (:meth:`restore`
    falls back to the newest intact step, or refuses)."""
    self._set_aside_foreign()
    steps = self._manager.all_steps()
    damage = [(step, integrity.damage(self.step_folder(step))) for step in steps]
    if damage and all(why == integrity.UNSEALED and self._finished_by_orbax(step)
                      for step, why in damage):
      self._set_aside(sorted(damage, reverse=True), None)

  def _set_aside_foreign(self) -> None:
    """Moves step folders this runner did not write (a user's ``checkpoints/100``: neither
    orbax's metadata nor our checksum) to ``checkpoints.damaged/``, with a warning, before
    orbax's rotation (``max_to_keep``) could count them as steps and delete them. When no
    step is the runner's own, nothing is moved: :meth:`restore` refuses the folder."""
    sealed = lambda step: os.path.exists(os.path.join(self.step_folder(step),
                                                      integrity.CHECKSUM_FILE))
    steps = self._manager.all_steps()
    foreign = [(step, FOREIGN) for step in steps
               if not self._finished_by_orbax(step) and not sealed(step)]
    if foreign and len(foreign) < len(steps):
      self._set_aside(foreign, self._newest_or_none(foreign))
      self._manager.reload()

  def _newest_or_none(self, leaving) -> int | None:
    """The newest step that stays after ``leaving`` is set aside (for the warning)."""
    gone = {s for s, _ in leaving}
    return max((s for s in self._manager.all_steps() if s not in gone), default=None)

  def _finished_by_orbax(self, step: int) -> bool:
    """Whether orbax finalised step ``step`` (its metadata written), i.e. the step is this
    runner's own save that stopped before the seal, not foreign files in a step folder."""
    folder = self.step_folder(step)
    return any(os.path.exists(os.path.join(folder, name)) for name in ORBAX_FINISHED)

  def _set_aside(self, damaged: list[tuple[int, str]], restored: int | None) -> None:
    """Moves damaged steps to ``checkpoints.damaged/`` with a warning naming each
    (``restored``: the step resumed from; None: the run starts over)."""
    aside = os.path.join(os.path.dirname(self.directory), DAMAGED_SUBDIR)
    for step, why in damaged:
      target = os.path.join(aside, str(step))
      n = 1
      while os.path.exists(target):
        target, n = os.path.join(aside, f"{step}.{n}"), n + 1
      if jax.process_index() == 0:
        os.makedirs(aside, exist_ok=True)
        shutil.move(self.step_folder(step), target)
      then = (f"resuming from step {restored}, the newest intact one" if restored is not None
              else "no save had finished, so the run starts from step 0")
      print(f"warning: checkpoint step {step} in {self.directory} is damaged: {why}. It was "
            f"moved to {target}; {then}.", file=sys.stderr, flush=True)
    self._manager.reload()

  def restore(self, target: Any, step: int | None = None) -> tuple[int, Any]:
    """Restores checkpoint ``step`` (default: the newest intact one) into ``target``'s structure.

    Damaged newer steps are set aside with a warning (see the module docstring).

    Returns:
      ``(step, tree)`` with the leaves' saved values, and the shapes and dtypes of ``target``.

    Raises:
      ConfigError: no intact checkpoint, or one that does not match ``target``.
    """
    if step is None:
      step, damaged = self._newest_intact()
      if damaged:
        self._set_aside(damaged, step)
    elif (why := integrity.damage(self.step_folder(step))) is not None:
      raise _corrupt(self.directory, f"step {step} is damaged: {why}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      tree = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # missing files, wrong structure, wrong shapes, garbage
      msg = " ".join(str(e).split())[:300]
      raise _corrupt(self.directory, f"step {step} does not hold this run's state "
                     f"({type(e).__name__}: {msg})") from None
    want, got = jax.tree.structure(target), jax.tree.structure(tree)
    if want != got:
      raise _corrupt(self.directory, f"step {step} has another structure than this run's state")
    return step, tree

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self._manager.close()


def newest_intact_step(workdir: str) -> int | None:
  """The newest step under ``<workdir>/checkpoints`` whose files match their checksums."""
  folder = os.path.join(workdir, SUBDIR)
  names = os.listdir(folder) if os.path.isdir(folder) else []
  for step in sorted((int(n) for n in names if n.isdigit()), reverse=True):
    if integrity.damage(os.path.join(folder, str(step))) is None:
      return step
  return None


def load_raw(workdir: str, step: int | None = None) -> Any:
  """The arrays of a checkpoint as saved (nested dicts of numpy arrays), without a target.

  Read onto this process's first device, whatever devices (or processes) saved it.
  """
  directory = os.path.abspath(os.path.join(workdir, SUBDIR))
  manager = ocp.CheckpointManager(directory)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  try:
    step = manager.latest_step() if step is None else step
    saved = ocp.StandardCheckpointer().metadata(
        os.path.join(directory, str(step), "default")).item_metadata
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                            saved.tree)
    tree = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  finally:
    manager.close()
  return jax.tree.map(np.asarray, tree)
