"""THE training loop of the runner: one run, or a vmapped group of K runs, the same code.

A :class:`Trainable` says what is trained: ``init()`` gives the state(s) and
``compile(n, states)`` the compiled chunk of n steps, ``states -> (states,
metrics)``. Its ``mapped`` flag says whether the states are K members stacked
along a leading axis (a vectorised sweep group) or one run's unbatched state;
the loop reads members through :meth:`Trainable.member`, so a single run is
simply a group of one that was never stacked.

Per chunk the loop: compiles the chunk length once (cached), runs it, hands
each live member's metrics to its :class:`~ebm_gan.runner.record.Recorder`
(which spots divergence), freezes a member that diverged at its last good
state while the others go on, saves a checkpoint when a chunk crosses a
multiple of ``checkpoint_every`` (and at the end), and draws periodic
pictures. Chunks end at multiples of ``steps_per_dispatch``, so the chunks of
a resumed run are those of an uninterrupted one; checkpoints hold
``{"state": states, "diverged_at": int32[K]}`` (a numpy array: written by process 0 alone when
there are several), so a killed group resumes
exactly like a single run.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ebm_gan.runner import checkpoint
from ebm_gan.runner import console
from ebm_gan.runner.record import DIVERGED, Recorder

# Steady throughput is quoted only when measured over at least this many steps and seconds.
MIN_TIMED_STEPS, MIN_TIMED_S = 500, 1.0


@dataclasses.dataclass(frozen=True)
class Trainable:
  """What the loop trains.

  Attributes:
    init: ``() -> states``: the initial state (K stacked states when ``mapped``).
    compile: ``(n, states) -> fn``, fn a compiled ``states -> (states, metrics)``
      running n steps (metrics stacked [n], or [K, n] when ``mapped``).
    size: K, the number of members.
    mapped: whether states and metrics carry a leading member axis.
  """
  init: Callable[[], Any]
  compile: Callable[[int, Any], Callable]
  size: int = 1
  mapped: bool = False

  def member(self, tree, i: int):
    """Member i's slice of a states (or metrics) tree."""
    return jax.tree.map(lambda x: x[i], tree) if self.mapped else tree

  def keep_alive(self, alive: np.ndarray, new, old):
    """``new`` for the members still alive, ``old`` (their last good state) for the others."""
    if not self.mapped:
      return new if alive[0] else old

    def pick(a, b):
      mask = jnp.asarray(alive).reshape((-1,) + (1,) * (a.ndim - 1))
      return jnp.where(mask, a, b)
    return jax.tree.map(pick, new, old)


def chunk_length(done: int, steps: int, per_chunk: int) -> int:
  """Steps of the next chunk: chunks end at multiples of ``per_chunk`` (and at ``steps``)."""
  return min(per_chunk - done % per_chunk, steps - done)


def _to_host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def restore(trainable: Trainable, ckpt: checkpoint.Checkpoints, recorders_for: Callable):
  """The initial or restored ``(states, diverged_at, start step, recorders)``."""
  states = trainable.init()
  diverged_at = np.full(trainable.size, -1, np.int32)
  start = 0
  ckpt.set_aside_unfinished()
  if ckpt.latest_step() is not None:
    start, tree = ckpt.restore({"state": states, "diverged_at": diverged_at.copy()})
    states, diverged_at = tree["state"], np.array(tree["diverged_at"])
  recorders = recorders_for(start)
  for r, at in zip(recorders, diverged_at):
    if at >= 0:
      r.status, r.diverged_at = DIVERGED, int(at)
  return states, diverged_at, start, recorders


def train(trainable: Trainable, states, diverged_at: np.ndarray, start: int,
          recorders: list[Recorder], ckpt: checkpoint.Checkpoints, config,
          progress: bool = True, desc: str | None = None):
  """Runs chunks from step ``start`` to ``config.steps``; returns ``(states, timings)``.

  Stops early when every member has diverged (each keeps its last good state).
  ``config`` gives ``steps``, ``steps_per_dispatch`` and ``picture_every``.
  """
  compiled, compile_s, ckpt_s = {}, 0.0, 0.0
  steady_s, steady_steps, first = 0.0, 0, True
  t_start = time.perf_counter()
  bar = tqdm(total=config.steps, initial=start, unit="step", disable=not progress,
             dynamic_ncols=True, desc=desc)
  done = start
  try:
    while done < config.steps and (diverged_at < 0).any():
      n = chunk_length(done, config.steps, config.steps_per_dispatch)
      if n not in compiled:
        console.phase(f"compiling the {n}-step chunk", progress)
        t = time.perf_counter()
        compiled[n] = trainable.compile(n, states)
        compile_s += time.perf_counter() - t
      t = time.perf_counter()
      new_states, metrics = compiled[n](states)
      metrics = _to_host(metrics)
      if not first:  # the first chunk also pays for transfers and warm-up
        steady_s, steady_steps = steady_s + time.perf_counter() - t, steady_steps + n
      first = False
      for i in np.flatnonzero(diverged_at < 0):
        bad = recorders[i].record(done, trainable.member(metrics, i))
        if bad is not None:
          diverged_at[i] = done + bad + 1
      if not (diverged_at < 0).any():
        bar.update(int(diverged_at.max() - done))
        break  # keep `states`: every member's last parameters before this chunk
      states = trainable.keep_alive(diverged_at < 0, new_states, states)
      done += n
      console.advance(bar, n, done == config.steps,
                      console.postfix(metrics, diverged_at < 0 if trainable.mapped else None))
      if ckpt.should_save(done - n, done) or done == config.steps:
        t = time.perf_counter()
        ckpt.save(done, {"state": states, "diverged_at": diverged_at.copy()})
        ckpt_s += time.perf_counter() - t
      if config.picture_every and done // config.picture_every > (done - n) // config.picture_every:
        for i in np.flatnonzero(diverged_at < 0):
          recorders[i].picture(trainable.member(states, i).params, done)
  finally:
    bar.close()
    ckpt.close()
  timed = steady_steps >= MIN_TIMED_STEPS and steady_s >= MIN_TIMED_S
  timings = {"resumed_from": start, "wall_s": time.perf_counter() - t_start,
             "compile_s": compile_s, "checkpoint_s": ckpt_s,
             "steps_per_s": steady_steps / steady_s if timed else None}
  if not timed:
    timings["steps_per_s_not_measured"] = (
        f"only {steady_steps} steps in {steady_s:.2f} s timed (needs {MIN_TIMED_STEPS}, "
        f"{MIN_TIMED_S:g} s)")
  if trainable.mapped:
    timings["vectorised_with"] = trainable.size
  return states, timings
