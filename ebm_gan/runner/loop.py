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

The wall time of training is kept across a run's launches (segments): beside ``checkpoints/``,
``wall_time.json`` records the cumulative wall time at each saved step, and a resumed segment
adds its own to the value saved at the step it restored (:class:`WallClock`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ebm_gan.runner import checkpoint
from ebm_gan.runner import console
from ebm_gan.runner import interrupts
from ebm_gan.runner import record
from ebm_gan.runner import tables
from ebm_gan.runner.record import Recorder
from ebm_gan.runner.status import Status

# Steady throughput is quoted only when measured over at least this many steps and seconds.
MIN_TIMED_STEPS, MIN_TIMED_S = 500, 1.0
WALL_RECORD = "wall_time.json"  # beside checkpoints/: {"from_step": s, "at_step": {step: seconds}}


class WallClock:
  """The training's wall time over all of a run's segments, saved beside its checkpoints.

  At every checkpoint the cumulative wall time is saved for that step; a resumed segment
  starts from the value saved for the step it restored, so the steps a killed segment ran
  after its last checkpoint (and that the next one runs again) are not counted twice, and a
  finished run evaluated again keeps its training time. Without a value for the restored
  step (a checkpoint written before this record existed, or a kill between the two writes)
  the count starts afresh at that step, and ``from_step`` says so.

  Args:
    folder: the folder holding ``checkpoints/`` (a run folder or a vmapped group's).
    start: the step this segment starts from (0: a fresh run).
    fallback: ``(from_step, seconds)`` at ``start`` when the record has no value there (a
      finished run's summary: :func:`ebm_gan.runner.record.training_wall`), or None.
  """

  def __init__(self, folder: str, start: int, fallback: tuple[int, float] | None = None):
    self._path = os.path.join(folder, WALL_RECORD)
    self._t0 = time.perf_counter()
    self.from_step, self.before = fallback if start > 0 and fallback else (start, 0.0)
    kept = {str(start): self.before}
    saved = record.read_json_object(self._path) if start > 0 else None
    try:
      at = saved["at_step"]
      from_step, before = int(saved["from_step"]), float(at[str(start)])
      kept = {k: float(v) for k, v in at.items() if int(k) <= start}  # later: set aside
      self.from_step, self.before = from_step, before
    except (TypeError, KeyError, ValueError, AttributeError):  # no (readable) value for start
      pass
    self._record = {"from_step": self.from_step, "at_step": kept}

  def segment(self) -> float:
    """Seconds since this segment started."""
    return time.perf_counter() - self._t0

  def total(self) -> float:
    """Seconds of training from ``from_step`` to now, over every segment."""
    return self.before + self.segment()

  def save(self, step: int) -> None:
    """Records the total at checkpoint ``step`` (process 0 writes; atomically).

    A failed write costs only the record (a resume from ``step`` then counts from there),
    never the run: it is reported on stderr and training goes on.
    """
    self._record["at_step"][str(step)] = self.total()
    if jax.process_index() != 0:
      return
    try:
      tables.write_text_atomically(self._path, json.dumps(self._record))
    except OSError as e:
      print(f"warning: could not record the wall time at step {step} in {self._path} ({e}); "
            "a run resumed from this step counts its wall time from there.", file=sys.stderr)


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
      r.status, r.diverged_at = Status.DIVERGED, int(at)
  return states, diverged_at, start, recorders


def _save(ckpt, clock, done: int, states, diverged_at) -> None:
  """Checkpoint ``done`` (atomic; signals held until it is written) and its wall time."""
  ckpt.save(done, {"state": states, "diverged_at": diverged_at.copy()})
  clock.save(done)


def _save_on_interrupt(ckpt, clock, done: int, saved: int, states, diverged_at) -> int:
  """Saves step ``done`` when it is newer than the last checkpoint ``saved`` (an interrupt
  then loses no finished chunk); returns the step a resume starts from."""
  if done > saved:
    _save(ckpt, clock, done, states, diverged_at)
    return done
  return ckpt.latest_step() or 0


def _record(trainable, recorders, metrics, done: int, diverged_at: np.ndarray) -> None:
  """Hands each live member its chunk's metrics; a member that diverged at chunk step b gets
  ``diverged_at = done + b + 1`` (in place)."""
  for i in np.flatnonzero(diverged_at < 0):
    bad = recorders[i].record(done, trainable.member(metrics, i))
    if bad is not None:
      diverged_at[i] = done + bad + 1


def train(trainable: Trainable, states, diverged_at: np.ndarray, start: int,
          recorders: list[Recorder], ckpt: checkpoint.Checkpoints, config,
          progress: bool = True, desc: str | None = None):
  """Runs chunks from step ``start`` to ``config.steps``; returns ``(states, timings)``.

  Stops early when every member has diverged (each keeps its last good state).
  ``config`` gives ``steps``, ``steps_per_dispatch`` and ``picture_every``. The timings'
  ``wall_s`` is the training's wall time from step ``wall_s_from_step`` (0 unless an earlier
  segment's record is missing) over every segment, ``segment_wall_s`` this segment's.
  """
  compiled, compile_s, ckpt_s = {}, 0.0, 0.0
  steady_s, steady_steps, first = 0.0, 0, True
  clock = WallClock(os.path.dirname(ckpt.directory), start,
                    record.training_wall(recorders[0].workdir, start) if recorders else None)
  bar = tqdm(total=config.steps, initial=start, unit="step", disable=not progress,
             dynamic_ncols=True, desc=desc, bar_format=console.WARMING_UP)
  done = saved = start
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
      interrupts.deliver()  # a signal held while the chunk ran: this chunk is not kept
      if not first:  # the first chunk also pays for transfers and warm-up
        steady_s, steady_steps = steady_s + time.perf_counter() - t, steady_steps + n
      first = False
      _record(trainable, recorders, metrics, done, diverged_at)
      if not (diverged_at < 0).any():
        bar.update(int(diverged_at.max() - done))
        break  # keep `states`: every member's last parameters before this chunk
      states, done = trainable.keep_alive(diverged_at < 0, new_states, states), done + n
      console.advance(bar, n, done == config.steps,
                      console.postfix(metrics, diverged_at < 0 if trainable.mapped else None))
      if steady_steps == 0 and done < config.steps:  # the first chunk: rate and ETA from now on
        console.restart_clock(bar)
      if ckpt.should_save(done - n, done) or done == config.steps:
        t = time.perf_counter()
        _save(ckpt, clock, done, states, diverged_at)
        ckpt_s, saved = ckpt_s + time.perf_counter() - t, done
      if config.picture_every and done // config.picture_every > (done - n) // config.picture_every:
        for i in np.flatnonzero(diverged_at < 0):
          recorders[i].picture(trainable.member(states, i).params, done)
  except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: keep every finished chunk
    e.resume_step = _save_on_interrupt(ckpt, clock, done, saved, states, diverged_at)
    raise
  finally:
    bar.close()
    ckpt.close()
  timings = {"resumed_from": start, "wall_s": clock.total(), "wall_s_from_step": clock.from_step,
             "segment_wall_s": clock.segment(), "compile_s": compile_s, "checkpoint_s": ckpt_s,
             **_throughput(steady_steps, steady_s)}
  if trainable.mapped:
    timings["vectorised_with"] = trainable.size
  return states, timings


def _throughput(steps: int, seconds: float) -> dict:
  """``steps_per_s`` when enough steps were timed, else None and the reason."""
  if steps >= MIN_TIMED_STEPS and seconds >= MIN_TIMED_S:
    return {"steps_per_s": steps / seconds}
  return {"steps_per_s": None, "steps_per_s_not_measured": (
      f"only {steps} steps in {seconds:.2f} s timed (needs {MIN_TIMED_STEPS}, "
      f"{MIN_TIMED_S:g} s)")}
