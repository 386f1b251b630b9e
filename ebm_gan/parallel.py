"""Data parallelism over all local devices with ``pmap`` (GPU/TPU, or fake CPU devices).

The train step itself holds no mapping code: built with ``axis_name``, it
``pmean``s directions and metrics over that axis. This module replicates the
state, shards batches along a new leading device axis and maps the step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AXIS = "batch"


def replicate(tree, n: int | None = None):
  """Copies every leaf onto a new leading axis of size n (default: local device count)."""
  n = jax.local_device_count() if n is None else n
  return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + jnp.shape(x)), tree)


def unreplicate(tree):
  """The first replica of every leaf (replicas are identical after pmean-ed updates)."""
  return jax.tree.map(lambda x: x[0], tree)


def shard(batch, n: int | None = None):
  """Splits a batch [B, ...] into [n, B/n, ...]; B must be divisible by n."""
  n = jax.local_device_count() if n is None else n
  if batch.shape[0] % n:
    raise ValueError(f"batch size {batch.shape[0]} is not divisible by {n} devices")
  return batch.reshape((n, batch.shape[0] // n) + batch.shape[1:])


def data_parallel(fn, axis_name: str = AXIS, **pmap_kwargs):
  """``pmap`` of a step or chunk built with the same ``axis_name``.

  Each device computes directions on its shard; ``lax.pmean`` inside the step
  averages them, so the replicated parameters stay identical: the update is
  that of the full batch's mean direction, d = (1/n) Σ_devices d_device.
  """
  return jax.pmap(fn, axis_name=axis_name, **pmap_kwargs)
