"""Data parallelism over the devices of a 1-D mesh (GPU/TPU, or fake CPU devices).

Two ways, with different mathematics (docs/theory.md §8, 'Several devices'):

* **The global batch** (:func:`jit_global`, the default of the runner): the one-device
  program, jitted over arrays placed on the mesh. The state is replicated; every array
  that :func:`shard_batch` marks (the data batch, the generator's latents) is split along
  its first axis, and XLA partitions the rest and inserts the collectives. Estimators
  that couple samples (kNN neighbours, MI negatives, SSGE's kernel, the noisy
  estimator's posterior) see the whole global batch, and the random numbers are those
  of one device (``jax_threefry_partitionable``), so N devices compute the one-device
  run's mathematics up to the order of floating-point sums.
* **Per-device shards** (:func:`data_parallel` with ``jax.shard_map``, the named-axis
  program that ``pmap`` gave): the train step, built with ``axis_name``, folds the
  device's index into its noise key, estimates on its own shard, and ``pmean``s
  directions and metrics. An estimator then sees batch / devices samples, so its value
  (and kNN's bias) changes with the device count; kept as an explicit option
  (``parallel.estimators='per_device'`` in the runner) and for composing the step in a
  user's own ``shard_map``.
"""

from __future__ import annotations

from typing import Callable

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from ebm_gan.errors import InvalidArgumentError

AXIS = "batch"


def shard_batch(x: jax.Array) -> jax.Array:
  """``x`` with its first (batch) axis split over the ambient mesh's :data:`AXIS`.

  Inside :func:`jit_global` (a ``jax.set_mesh`` with that axis) this is a
  ``with_sharding_constraint``; anywhere else (one device, a ``shard_map`` body, a
  user's mesh with other axis names) it is the identity. It changes no value.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or AXIS not in mesh.axis_names or AXIS in mesh.manual_axes:
    return x
  if x.shape[0] % mesh.shape[AXIS]:
    return x  # not evenly divisible: XLA decides (evaluation sizes, odd sample counts)
  return jax.lax.with_sharding_constraint(x, P(AXIS))


def jit_global(fn: Callable, mesh: jax.sharding.Mesh, out_shardings=None) -> Callable:
  """``jax.jit(fn)`` run as the one-device program over ``mesh``'s devices (global batch).

  ``fn`` is traced under ``jax.set_mesh(mesh)``, so the batches it draws through
  :func:`shard_batch` are split over the devices; its arguments keep the shardings
  they carry (put the state on :func:`replicated`), and its outputs are replicated
  unless ``out_shardings`` says otherwise. The result has ``.lower(*args)`` like a
  jitted function.
  """
  jitted = jax.jit(fn, out_shardings=replicated(mesh) if out_shardings is None else out_shardings)

  def call(*args):
    with jax.set_mesh(mesh):
      return jitted(*args)

  def lower(*args):
    with jax.set_mesh(mesh):
      return jitted.lower(*args)

  call.lower = lower
  return call


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
  """``fn`` mapped over ``mesh`` by ``shard_map``: the state replicated, the last
  ``sharded_args`` split on dim 0 (per-device shards; see the module docstring).

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
