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

A checkpoint folder that cannot be read — foreign files, a truncated save
left by another tool, a state of another model — is reported as a
:class:`~ebm_gan.runner.registry.ConfigError` naming the folder, never a traceback.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ebm_gan.runner.registry import ConfigError

SUBDIR = "checkpoints"

# orbax logs every save at INFO/WARNING level; a run's own log is enough.
logging.getLogger("absl").setLevel(logging.ERROR)


def _corrupt(directory: str, why: str) -> ConfigError:
  return ConfigError(
      f"the checkpoint folder {directory!r} cannot be used to resume: {why}. Move that folder "
      "(or the broken step inside it) aside to start over, or pass another --workdir.")


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
                                           enable_async_checkpointing=False)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    except Exception as e:  # orbax reads the folder's metadata here
      raise _corrupt(self.directory, f"{type(e).__name__}: {e}") from None

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def should_save(self, before: int, after: int) -> bool:
    """Whether a chunk taking the run from step ``before`` to ``after`` crosses a save point."""
    return after // self.every > before // self.every

  def save(self, step: int, tree: Any) -> None:
    """Writes ``tree`` as checkpoint ``step`` (atomically; replaces nothing that exists)."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(tree))
    self._manager.wait_until_finished()

  def restore(self, target: Any, step: int | None = None) -> tuple[int, Any]:
    """Restores checkpoint ``step`` (default: the latest) into the structure of ``target``.

    Returns:
      ``(step, tree)`` with the leaves' saved values, and the shapes and dtypes of ``target``.

    Raises:
      ConfigError: no checkpoint, or one that does not match ``target`` or cannot be read.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise _corrupt(self.directory, "it holds no complete checkpoint")
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


def load_raw(workdir: str, step: int | None = None) -> Any:
  """The arrays of a checkpoint as saved (nested dicts of numpy arrays), without a target."""
  directory = os.path.abspath(os.path.join(workdir, SUBDIR))
  manager = ocp.CheckpointManager(directory)
  try:
    step = manager.latest_step() if step is None else step
    tree = manager.restore(step, args=ocp.args.StandardRestore())
  finally:
    manager.close()
  return jax.tree.map(np.asarray, tree)
