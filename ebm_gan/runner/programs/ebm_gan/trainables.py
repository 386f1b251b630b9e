"""What the 'ebm_gan' program trains: one run or a vmapped group, on one device or many.

A :class:`~ebm_gan.runner.loop.Trainable` gives the initial state(s) and the compiled
chunk of n steps. Over several devices (``parallel.devices``) the layout is:

* one run, or a group whose members cannot be spread one per device: the one-device
  program over the global batch (``parallel.estimators='global'``, the default;
  :func:`ebm_gan.parallel.jit_global`), the state replicated and the batch split, so
  the run computes the one-device mathematics; or, with ``'per_device'``, a
  ``shard_map`` whose estimators see each device's shard (docs/theory.md §8, 'Several devices');
* a group of K members with K a multiple of the device count: members spread over the
  devices, each member's whole batch on one device (no collective).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ebm_gan import parallel
from ebm_gan import train
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner import loop


def _data(exp):
  """``(arrays, sampler_of)``: what the compiled chunk takes as its data argument, and
  ``sampler_of(arrays) -> sample(key, n)`` built inside the traced function.

  An image dataset's training arrays are a jit ARGUMENT, not a closed-over constant (which
  compiles an MNIST-sized array into the program: BUILD.md, Datasets); a toy needs none.
  """
  ds = exp.dataset
  if config_lib.is_image(ds):
    return ds.arrays(), ds.sampler
  return None, lambda arrays: ds.sample


def dispatch(exp) -> str:
  """'per_step' or 'scan': how a chunk's steps run (``dispatch``; 'auto': per_step for conv
  models on a CPU backend, where XLA runs convolutions inside a loop ~10x slower,
  jax-ml/jax#12868; BUILD.md, Benchmarks)."""
  how = exp.config.dispatch
  if how != "auto":
    return how
  conv = "conv" in (exp.config.model.energy, exp.config.model.generator)
  return "per_step" if conv and jax.default_backend() == "cpu" else "scan"


def _compiler(exp, build_fn, args, mapped: bool, jit=jax.jit):
  """``compile_chunk(n, states)`` for ``build_fn(n, unroll) -> fn(*args, states)``: n steps in
  one compiled ``lax.scan``, or (:func:`dispatch` 'per_step') one compiled step (a 1-step
  chunk unrolled: no loop) called n times from Python with the metrics concatenated; a
  run's chunks never change, so resume stays exact. ``jit``: how a chunk is jitted."""
  per_step = dispatch(exp) == "per_step"
  compiled = {}

  def compile_n(n, states):
    if n not in compiled:
      fn = jit(build_fn(n, per_step)).lower(*args, states).compile()
      compiled[n] = lambda s: fn(*args, s)
    return compiled[n]

  def compile_chunk(n, states):
    if not per_step:
      return compile_n(n, states)
    one = compile_n(1, states)

    def chunk(states):
      rows = []
      for _ in range(n):
        states, metrics = one(states)
        rows.append(metrics)
      return states, jax.tree.map(lambda *m: jnp.concatenate(m, axis=int(mapped)), *rows)
    return chunk
  return compile_chunk


def _per_device(exp) -> bool:
  return exp.devices > 1 and exp.config.parallel.estimators == "per_device"


def _step(exp, tx, axis):
  """The experiment's training step with optimiser ``tx`` (its scheme, critic steps, EMA and
  penalty schedule); ``axis``: the shard_map axis of per-device estimators, or None."""
  c = exp.config
  return train.make_train_step(exp.game, tx, c.scheme, critic_steps=c.critic_steps,
                               axis_name=axis, ema_decay=c.optimizer.ema_decay,
                               penalty_schedule=exp.penalty_schedule)


def _initial_state(exp, tx, sampler_of, arrays, key):
  """``train.init_state`` from a first batch of the experiment's data drawn with ``key``."""
  c = exp.config
  return train.init_state(exp.game, tx, key, sampler_of(arrays)(key, c.batch_size),
                          ema=c.optimizer.ema_decay > 0)


def _run_chunk(exp, step, n, sampler, axis, unroll, state):
  """n steps of ``step`` from ``state`` on batches of ``sampler``: the global batch, or with
  per-device estimators (``axis``) each device's batch_size / devices samples."""
  batch = exp.config.batch_size // (exp.devices if axis else 1)
  return train.make_chunk(step, n, sampler, batch, axis_name=axis, unroll=unroll)(state)


def single(exp) -> loop.Trainable:
  """One run: on one device, or data-parallel over ``exp.devices`` (ebm_gan.parallel)."""
  c, n_dev = exp.config, exp.devices
  arrays, sampler_of = _data(exp)
  axis = parallel.AXIS if _per_device(exp) else None
  step = _step(exp, exp.tx, axis)
  mesh = parallel.device_mesh(n_dev) if n_dev > 1 else None

  def init():  # one compiled program, not op by op
    state = jax.jit(lambda k, a: _initial_state(exp, exp.tx, sampler_of, a, k))(
        jax.random.PRNGKey(c.seed), arrays)
    return state if mesh is None else jax.device_put(state, parallel.replicated(mesh))

  def build_chunk(n, unroll):
    def chunk(a, state):
      return _run_chunk(exp, step, n, sampler_of(a), axis, unroll, state)
    return parallel.data_parallel(chunk, mesh) if axis else chunk

  jit = functools.partial(parallel.jit_global, mesh=mesh) if mesh and not axis else jax.jit
  return loop.Trainable(init, _compiler(exp, build_chunk, (arrays,), mapped=False, jit=jit))


def group(exps) -> loop.Trainable:
  """K members in one program: vmapped, or unrolled under the per_step dispatch
  (:func:`unrolled_members`); over several devices, members are spread on the mesh
  (K % devices == 0) or, when they cannot be, every member is data-parallel (:func:`single`'s
  layouts)."""
  base = exps[0]
  c, game, n_dev = base.config, base.game, base.devices
  arrays, sampler_of = _data(base)
  spread = n_dev > 1 and len(exps) % n_dev == 0
  axis = parallel.AXIS if _per_device(base) and not spread else None
  mesh = parallel.device_mesh(n_dev) if n_dev > 1 else None
  rates = {"lr": jnp.asarray([e.config.optimizer.lr for e in exps], jnp.float32),
           "critic_lr": jnp.asarray([e.config.optimizer.lr if e.config.optimizer.critic_lr is None
                                     else e.config.optimizer.critic_lr for e in exps],
                                    jnp.float32)}

  def optimizer(lr, critic_lr):  # constant schedules, so that the rates can be traced
    return config_lib.build_optimizer(c, game.players, lr=lambda count: lr,
                                      critic_lr=lambda count: critic_lr)

  def init():
    tx = optimizer(1.0, 1.0)  # the structure of the optimiser states
    keys = jnp.stack([jax.random.PRNGKey(e.config.seed) for e in exps])
    states = jax.jit(lambda a, ks: jax.vmap(
        lambda k: _initial_state(base, tx, sampler_of, a, k))(ks))(arrays, keys)
    return states if mesh is None else jax.device_put(states, _group_sharding(mesh, spread))

  def build_chunk(n, unroll):
    def chunk(a, h, state):
      step = _step(base, optimizer(h["lr"], h["critic_lr"]), axis)
      return _run_chunk(base, step, n, sampler_of(a), axis, unroll, state)
    members = (unrolled_members(chunk) if unroll
               else jax.vmap(chunk, in_axes=(None, 0, 0)))
    if mesh is not None and (spread or axis):
      members = parallel.data_parallel(members, mesh, sharded_args=2 if spread else 0,
                                       out_sharded=spread)
    return members

  jit = (functools.partial(parallel.jit_global, mesh=mesh) if mesh and not (spread or axis)
         else jax.jit)
  return loop.Trainable(init, _compiler(base, build_chunk, (arrays, rates), mapped=True, jit=jit),
                        size=len(exps), mapped=True)


def unrolled_members(chunk):
  """``chunk`` applied to each member of the stacked ``(h, state)`` in turn, in ONE program
  (a Python loop at trace time), outputs stacked: :func:`jax.vmap`'s result without its
  batching of the convolutions. vmap turns each member's convolution into one grouped
  convolution (``feature_group_count`` = members), which XLA:CPU runs about 2x slower per
  member than the members' own convolutions (BUILD.md, Benchmarks: benchmarks/conv_group.py);
  the per_step dispatch (:func:`dispatch`) uses this, as it unrolls the steps for the same
  backend. Under ``shard_map`` it loops over the members on each device."""
  def members(a, h, state):
    count = jax.tree.leaves(h)[0].shape[0]
    outs = [chunk(a, *jax.tree.map(lambda v: v[i], (h, state))) for i in range(count)]
    return jax.tree.map(lambda *v: jnp.stack(v), *outs)
  return members


def _group_sharding(mesh, spread: bool):
  """Members split over the mesh (``spread``), or every member replicated on every device."""
  if spread:
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(parallel.AXIS))
  return parallel.replicated(mesh)
