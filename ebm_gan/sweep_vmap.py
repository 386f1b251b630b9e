"""Vectorised sweep members: K runs of the 'ebm_gan' program as ONE compiled program.

Members whose configs differ only in :data:`VMAP_KEYS` (the seed and the
learning rates) and :data:`HOST_KEYS` (divergence bound, logging and
evaluation sizes, read on the host per member) form a *group*. Their
TrainStates are stacked along a leading axis of size K and every chunk of ``lax.scan`` steps is ``jax.vmap``-ed over
it. The learning rates are traced values: each member's optimiser is built
inside the mapped function with the constant schedule ``lambda count: lr_k``
(so its optimiser state holds a schedule count, unlike a lone run's).

Each member still gets its own run folder (metrics.jsonl, TensorBoard,
pictures, summary) written by :class:`ebm_gan.experiment.Recorder`. A member
that diverges is frozen at its last good state (a ``where`` over the stacked
state) while the others go on. The group's stacked state and every member's
divergence step are checkpointed together under ``group_dir``, so a killed
group resumes exactly like a single run.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ebm_gan import builders
from ebm_gan import checkpoint
from ebm_gan import experiment
from ebm_gan import runlog
from ebm_gan import train

VMAP_KEYS = ("seed", "optimizer.lr", "optimizer.critic_lr")
# Host-side settings each member's Recorder reads from its own config: free to differ too.
HOST_KEYS = ("divergence_bound", "log_every", "eval_samples", "tensorboard_every")
_CRITICS = ("energy", "discriminator")


def _signature(config) -> str | None:
  if config.get("program") != "ebm_gan":
    return None
  flat = experiment.flatten_config(config)
  return json.dumps({k: v for k, v in sorted(flat.items())
                     if k not in VMAP_KEYS + HOST_KEYS}, default=str)


def plan(configs) -> list[list[int]]:
  """Groups member indices: members equal but for VMAP_KEYS and HOST_KEYS share a group.

  Members of other programs are singletons. Groups keep the members' order.
  """
  groups: dict[str, list[int]] = {}
  out: list[list[int]] = []
  for i, c in enumerate(configs):
    sig = _signature(c)
    if sig is None:
      out.append([i])
    elif sig in groups:
      groups[sig].append(i)
    else:
      groups[sig] = [i]
      out.append(groups[sig])
  return out


def _learning_rates(configs):
  lr = np.array([c.optimizer.lr for c in configs], np.float32)
  critic = np.array([c.optimizer.lr if c.optimizer.critic_lr is None else c.optimizer.critic_lr
                     for c in configs], np.float32)
  return {"lr": jnp.asarray(lr), "critic_lr": jnp.asarray(critic)}


def make_optimizer(config, players, lr, critic_lr):
  """Per-player transforms of :func:`ebm_gan.builders.build_optimizer` with traced rates.

  The generator moves at ``lr``; every other player (energy, discriminator,
  estimator players) at ``critic_lr``; both enter as constant schedules so
  that they can be traced per member.
  """
  return builders.build_optimizer(config, players, lr=lambda count: lr,
                                  critic_lr=lambda count: critic_lr)


def _select(alive, new, old):
  def pick(a, b):
    mask = jnp.asarray(alive).reshape((-1,) + (1,) * (a.ndim - 1))
    return jnp.where(mask, a, b)
  return jax.tree.map(pick, new, old)


def _member(tree, k):
  return jax.tree.map(lambda x: x[k], tree)


def run_group(configs, workdirs, group_dir: str, progress: bool = True) -> list[dict]:
  """Trains K compatible members as one vmapped program; returns their summaries.

  Args:
    configs: the members' configs (equal but for VMAP_KEYS, HOST_KEYS; 'ebm_gan' program).
    workdirs: each member's run folder.
    group_dir: the folder of the group's stacked checkpoints.
    progress: show a progress bar.
  """
  base = configs[0]
  for c in configs:
    experiment.validate(c)
  exp = builders.build(base)
  batch, sample, players = base.batch_size, exp.dataset.sample, exp.game.players
  hp = _learning_rates(configs)
  tx0 = make_optimizer(base, players, 1.0, 1.0)  # the structure of the optimiser states

  def init(key):
    return train.init_state(exp.game, tx0, key, sample(key, batch))

  keys = jnp.stack([jax.random.PRNGKey(c.seed) for c in configs])
  states = jax.jit(jax.vmap(init))(keys)
  k = len(configs)
  diverged_at = np.full(k, -1, np.int32)
  for d in workdirs:
    os.makedirs(d, exist_ok=True)
  os.makedirs(group_dir, exist_ok=True)
  ckpt = checkpoint.Checkpoints(group_dir, experiment.option(base, "checkpoint_every"),
                                experiment.option(base, "max_to_keep"))
  start = 0
  if ckpt.latest_step() is not None:
    for c, d in zip(configs, workdirs):
      experiment.check_resumable(d, c)
    start, tree = ckpt.restore({"state": states, "diverged_at": jnp.asarray(diverged_at)})
    states, diverged_at = tree["state"], np.array(tree["diverged_at"])
  recorders = []
  for c, d, at in zip(configs, workdirs, diverged_at):
    runlog.write_provenance(d, c)
    r = experiment.Recorder(exp, c, d, resume_step=start)
    if at >= 0:
      r.status, r.diverged_at = experiment.DIVERGED, int(at)
    recorders.append(r)

  def member_chunk(n):
    def chunk(state, h):
      tx = make_optimizer(base, players, h["lr"], h["critic_lr"])
      step = train.make_train_step(exp.game, tx, base.scheme, critic_steps=base.critic_steps)
      return train.make_chunk(step, n, sample, batch)(state)
    return jax.jit(jax.vmap(chunk)).lower(states, hp).compile()

  compiled, compile_s, ckpt_s = {}, 0.0, 0.0
  picture_every = experiment.option(base, "picture_every")
  t_start = time.perf_counter()
  bar = tqdm(total=base.steps, initial=start, unit="step", disable=not progress,
             dynamic_ncols=True, desc=f"{k} runs")
  done = start
  try:
    while done < base.steps and (diverged_at < 0).any():
      n = experiment.chunk_length(done, base.steps, base.steps_per_dispatch)
      if n not in compiled:
        t = time.perf_counter()
        compiled[n] = member_chunk(n)
        compile_s += time.perf_counter() - t
      new_states, chunk_metrics = compiled[n](states, hp)
      chunk_metrics = jax.tree.map(np.asarray, jax.device_get(chunk_metrics))
      for i in np.flatnonzero(diverged_at < 0):
        bad = recorders[i].record(done, {name: v[i] for name, v in chunk_metrics.items()})
        if bad is not None:
          diverged_at[i] = done + bad + 1
      states = _select(diverged_at < 0, new_states, states)  # diverged: keep the last good
      done += n
      bar.update(n)
      if ckpt.should_save(done - n, done) or done == base.steps:
        t = time.perf_counter()
        ckpt.save(done, {"state": states, "diverged_at": jnp.asarray(diverged_at)})
        ckpt_s += time.perf_counter() - t
      if picture_every and done // picture_every > (done - n) // picture_every:
        for i in np.flatnonzero(diverged_at < 0):
          recorders[i].picture(_member(states.params, i), done)
  finally:
    bar.close()
    ckpt.close()
  wall_s = time.perf_counter() - t_start
  summaries = []
  for i, (c, d) in enumerate(zip(configs, workdirs)):
    timings = {"resumed_from": start, "wall_s": wall_s, "compile_s": compile_s,
               "checkpoint_s": ckpt_s, "log_s": recorders[i].log_s,
               "picture_s": recorders[i].picture_s, "vectorised_with": k}
    summaries.append(experiment.finish(exp, c, d, _member(states.params, i),
                                       int(states.step[i]), recorders[i], timings))
  return summaries
