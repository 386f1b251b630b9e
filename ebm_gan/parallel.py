"""Data parallelism over devices with ``jax.shard_map`` on a 1-D mesh (GPU/TPU, or fake CPU devices).

The train step holds no mapping code: built with ``axis_name``, it folds the
device's index into its noise key and ``pmean``s directions and metrics over
that axis (docs/theory.md §8: the mean of the per-device gradients of each
player's own loss is the gradient of the mean loss). This module builds the
mesh and maps a step or a chunk over it, the named-axis, per-device program
that ``pmap`` gave, with the state replicated (``P()``) and each device
drawing or receiving its own shard of the batch.

With ``make_chunk(step, n, sampler, batch_size // devices, axis_name=AXIS)``
every device draws its own ``batch_size // devices`` samples inside the scan,
so nothing is transferred per step; the global batch is the union of the shards.
"""

from __future__ import annotations

from typing import Callable

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from ebm_gan.errors import InvalidArgumentError

AXIS = "batch"


def device_mesh(devices: int | None = None, axis_name: str = AXIS) -> jax.sharding.Mesh:
  """A 1-D mesh over the first ``devices`` devices (default: all of them).

  Raises:
    InvalidArgumentError: more devices asked for than there are.
  """
  available = jax.devices()
  n = len(available) if devices is None else devices
  if not 1 <= n <= len(available):
    raise InvalidArgumentError(f"devices={n!r} is not allowed; this process sees "
                               f"{len(available)} device(s): expected 1..{len(available)}.")
  return jax.sharding.Mesh(available[:n], (axis_name,))


def replicated(mesh: jax.sharding.Mesh):
  """The sharding that places a full copy of an array on every device of ``mesh``."""
  return NamedSharding(mesh, P())


def data_parallel(fn: Callable, mesh: jax.sharding.Mesh, axis_name: str = AXIS,
                  sharded_args: int = 0, out_sharded: bool = False) -> Callable:
  """``fn`` mapped over ``mesh``: the state replicated, the last ``sharded_args`` split on dim 0.

  ``fn`` must be built with the same ``axis_name`` (``make_train_step(...,
  axis_name=AXIS)``; ``make_chunk(..., axis_name=AXIS)``), so that its outputs
  are replicated: directions and metrics are ``pmean``-ed, and every device
  applies the same update. With ``out_sharded`` (and every argument sharded),
  ``fn`` is instead an independent program per slice — e.g. vmapped sweep
  members spread over the devices — and its outputs stay split on dim 0.

  Args:
    fn: ``fn(state, *shards) -> (state, metrics)``.
    mesh: a 1-D mesh whose axis is ``axis_name`` (:func:`device_mesh`).
    axis_name: the mesh axis.
    sharded_args: how many trailing arguments (batches [B, ...]) are split
      along their first axis, B/devices rows per device.
    out_sharded: the outputs are split along their first axis too (not replicated).

  Returns:
    The mapped function (jit it).
  """
  def specs(num_args):
    return (P(),) * (num_args - sharded_args) + (P(axis_name),) * sharded_args

  def mapped(*args):
    # check_vma=False: per-device gradients stay per-device (as under pmap) and the step's
    # own pmean averages them. With check_vma=True, jax.grad of a replicated input would
    # already psum the per-device gradients, and the pmean would then keep that sum.
    out = P(axis_name) if out_sharded else P()
    return jax.shard_map(fn, mesh=mesh, in_specs=specs(len(args)), out_specs=out,
                         check_vma=False)(*args)
  return mapped


def check_divisible(batch_size: int, devices: int) -> int:
  """The per-device batch ``batch_size // devices``; InvalidArgumentError if it does not divide."""
  if batch_size % devices:
    raise InvalidArgumentError(
        f"batch_size={batch_size} is not divisible by {devices} devices; allowed: a multiple "
        f"of {devices} (each device gets batch_size / devices samples).")
  return batch_size // devices
