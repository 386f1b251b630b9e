"""The 'ebm_gan' program: train a game on a 2-D toy dataset and write a run folder.

Writes into ``workdir``:
  config.json        the resolved config
  provenance.json    package versions, git revision, command line
  metrics.jsonl      one JSON object per logged step (losses, L1/L3, entropy, norms, diverged)
  tensorboard/       the same scalars as TensorBoard event files
  checkpoints/       orbax checkpoints of the TrainState (every ``checkpoint_every`` steps)
  pictures/          periodic samples-over-energy and energy-landscape pictures
  samples.png        generator samples over the energy's contours (and the data)
  curves.png         training curves
  summary.json/.md   final metrics (modes covered, high-quality %, losses, timings, status)

Training runs in jit-compiled ``lax.scan`` chunks of ``steps_per_dispatch``
steps, aligned to multiples of it, so the chunks of a resumed run are those of
an uninterrupted one. A workdir that holds a checkpoint is resumed from its
latest one: ``metrics.jsonl`` is cut back to that step, and since all
randomness is a function of (state.key, state.step), the run finishes with the
same bits as one never interrupted (on CPU).
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from ebm_gan import builders
from ebm_gan import checkpoint
from ebm_gan import metrics as metrics_lib
from ebm_gan import pictures
from ebm_gan import runlog
from ebm_gan import train
from ebm_gan.registry import ConfigError

OK, DIVERGED = "ok", "diverged"
# Fields of the runner; configs written before them get these values.
RUNNER_DEFAULTS = {"checkpoint_every": 1000, "max_to_keep": 3, "picture_every": 1000,
                   "tensorboard_every": 10}
# Fields that may change between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "max_to_keep", "picture_every",
                     "tensorboard_every", "eval_samples", "divergence_bound", "log_every")
format_table = runlog.format_table


def option(config, name: str):
  """A runner field of ``config``, or its default for configs that predate it."""
  return config.get(name, RUNNER_DEFAULTS[name])


def validate(config) -> None:
  """Raises ConfigError on the first invalid field (the model's, then the runner's)."""
  builders.validate(config)
  for name in ("checkpoint_every", "max_to_keep"):
    value = option(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ConfigError(f"{name}={value!r} is not allowed; expected a positive integer.")
  for name in ("picture_every", "tensorboard_every"):
    value = option(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ConfigError(f"{name}={value!r} is not allowed; expected an integer >= 0 (0: off).")


def first_bad_step(chunk_metrics: dict, bound: float) -> int | None:
  """Index of the first step whose loss metrics are non-finite or exceed ``bound``, else None."""
  bad = None
  for name, values in chunk_metrics.items():
    v = np.asarray(values, np.float64)
    flags = ~np.isfinite(v)
    if name.startswith("loss_") or name in ("l1", "l3"):
      flags |= np.abs(v) > bound
    idx = np.flatnonzero(flags)
    if idx.size and (bad is None or idx[0] < bad):
      bad = int(idx[0])
  return bad


def chunk_length(done: int, steps: int, per_chunk: int) -> int:
  """Steps of the next chunk: chunks end at multiples of ``per_chunk`` (and at ``steps``)."""
  return min(per_chunk - done % per_chunk, steps - done)


def energy_values(exp, params, x):
  """U(x) of the game's critic (the energy, or the GAN discriminator's logit)."""
  if hasattr(exp.game, "energy_fn"):
    return exp.game.energy_fn(params)(x)
  return exp.game.discriminator.apply(params["discriminator"], x)


def check_resumable(workdir: str, config) -> None:
  """ConfigError if ``workdir`` holds a run whose config differs in a field that matters."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = _flatten(json.load(f))
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={workdir!r} holds a checkpoint but its config.json cannot be "
                      f"read ({e}); pass another --workdir.") from None
  new = flatten_config(config)
  diff = sorted(k for k in set(old) | set(new)
                if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
  if diff:
    shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
    raise ConfigError(f"--workdir={workdir!r} holds a checkpoint of a run with another config "
                      f"({shown}); resuming it would mix two runs. Pass another --workdir, or "
                      f"change only {', '.join(RESUMABLE_CHANGES)}.")


def flatten_config(config) -> dict:
  """``{'a.b': value}`` for every field of a ConfigDict (lists as tuples), as saved in JSON."""
  return _flatten(json.loads(config.to_json_best_effort()))


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[prefix + k] = tuple(v) if isinstance(v, list) else v
  return out


class Recorder:
  """One run's host-side bookkeeping: metrics rows, divergence, periodic pictures.

  Args:
    exp: the built experiment (game, optimiser, dataset).
    config: the run's config.
    workdir: the run folder.
    resume_step: the checkpoint step the run starts from (0 for a fresh run).
  """

  def __init__(self, exp, config, workdir: str, resume_step: int = 0):
    self.exp, self.config, self.workdir = exp, config, workdir
    self.log = runlog.MetricsLog(workdir, resume_step, option(config, "tensorboard_every"))
    self.status, self.diverged_at, self.last = OK, None, {}
    if resume_step:  # the last metrics before the checkpoint, for the summary
      rows = runlog.read_metrics(workdir)
      if rows:
        self.last = {k: v for k, v in rows[-1].items()
                     if k.startswith("loss_") or k in ("l1", "l3", "entropy")}
    self.log_s = self.picture_s = 0.0
    self._key = jax.random.PRNGKey(config.seed)
    self.sample = jax.jit(lambda p, k: exp.game.sample(p, k, config.eval_samples)[0])
    self._energy = jax.jit(lambda p, x: energy_values(exp, p, x))
    self._data = None

  def record(self, done: int, chunk_metrics: dict) -> int | None:
    """Logs a chunk that started at step ``done``; returns the index of a bad step or None."""
    t = time.perf_counter()
    bad = first_bad_step(chunk_metrics, self.config.divergence_bound)
    if bad is not None:
      self.status, self.diverged_at = DIVERGED, done + bad + 1
    n = len(next(iter(chunk_metrics.values())))
    rows = []
    for i in range(n if bad is None else bad + 1):
      step = done + i + 1
      if step % self.config.log_every and i != bad:
        continue
      row = {"step": step, **{k: v[i] for k, v in chunk_metrics.items()}}
      row["diverged"] = bad is not None and i == bad
      rows.append(row)
    self.log.write(rows)
    if bad is None:
      self.last = {k: float(v[-1]) for k, v in chunk_metrics.items()
                   if k.startswith("loss_") or k in ("l1", "l3", "entropy")}
    self.log_s += time.perf_counter() - t
    return bad

  def picture(self, params, step: int, name: str | None = None) -> None:
    """Saves ``pictures/step_<step>.png`` (or ``name`` in the run folder) for ``params``."""
    t = time.perf_counter()
    if name is None:
      os.makedirs(os.path.join(self.workdir, "pictures"), exist_ok=True)
      name = os.path.join("pictures", f"step_{step:07d}.png")
    samples = np.asarray(self.sample(params, jax.random.fold_in(self._key, 2**31 - 1)))
    if self._data is None:
      self._data = np.asarray(self.exp.dataset.sample(self._key, 1000))
    pictures.save_samples(os.path.join(self.workdir, name), samples,
                          lambda x: self._energy(params, x), self.exp.dataset.scale,
                          data=self._data, title=f"{self.config.dataset}, step {step}")
    self.picture_s += time.perf_counter() - t

  def close(self) -> None:
    """Flushes and closes the metrics files."""
    self.log.close()


def evaluate(exp, params, key, config, sample_fn=None) -> dict:
  """Final sample-quality metrics and the samples-over-energy picture's inputs.

  ``sample_fn(params, key)``, if given, draws the ``config.eval_samples`` samples (jitted).
  """
  if sample_fn is None:
    x_gen = exp.game.sample(params, key, config.eval_samples)[0]
  else:
    x_gen = sample_fn(params, key)
  x_gen = np.asarray(x_gen)
  out = {"samples": x_gen}
  if hasattr(exp.dataset, "modes"):
    out.update(metrics_lib.mode_metrics(x_gen, exp.dataset.modes, exp.dataset.std))
  return out


def finish(exp, config, workdir: str, params, steps_done: int, recorder: Recorder,
           timings: dict) -> dict:
  """Evaluates ``params``, draws the final pictures and curves, writes the summary."""
  recorder.close()
  key = jax.random.PRNGKey(config.seed)
  summary = {"status": recorder.status, "steps_done": int(steps_done),
             "diverged_at": recorder.diverged_at, **timings}
  if recorder.status == OK:
    summary.update(recorder.last)
  ev = evaluate(exp, params, jax.random.fold_in(key, 2**31 - 1), config, recorder.sample)
  samples = ev.pop("samples")
  summary.update(ev)
  if np.all(np.isfinite(samples)):
    title = (f"{config.dataset}, step {steps_done}: "
             + (f"{summary['modes_covered']}/{summary['num_modes']} modes, "
                f"{100 * summary['high_quality']:.1f}% high-quality" if "modes_covered" in summary
                else recorder.status))
    pictures.samples_over_energy(os.path.join(workdir, "samples.png"), samples,
                              jax.jit(lambda x: energy_values(exp, params, x)),
                              exp.dataset.scale, data=np.asarray(exp.dataset.sample(key, 1000)),
                              title=title)
  plot_curves(workdir)
  runlog.write_summary(workdir, summary)
  return summary


def plot_curves(workdir: str) -> None:
  """``curves.png``: every metric of ``metrics.jsonl`` against the step."""
  rows = runlog.read_metrics(workdir)
  if not rows:
    return
  names = [k for k in rows[0] if k not in ("step", "diverged")]
  steps = np.array([r["step"] for r in rows])
  pictures.training_curves(os.path.join(workdir, "curves.png"), steps,
                           {k: np.array([r.get(k, np.nan) for r in rows], np.float64)
                            for k in names})


def init_state(exp, config, key):
  """The run's initial TrainState, built by one compiled program (not op by op)."""
  return jax.jit(lambda k: train.init_state(exp.game, exp.tx, k,
                                            exp.dataset.sample(k, config.batch_size)))(key)


def _to_host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def run(config, workdir: str, progress: bool = True) -> dict:
  """Trains the configured game and writes the run folder; returns the summary dict.

  Resumes from the latest checkpoint in ``workdir`` if there is one. The
  summary's ``status`` is 'ok' or 'diverged' (NaN/Inf or a loss above
  ``config.divergence_bound``); a diverged run keeps its metrics up to the
  divergence, its last good checkpoint, and still writes its summary.
  """
  validate(config)  # user errors before any compile
  exp = builders.build(config)
  os.makedirs(workdir, exist_ok=True)
  ckpt = checkpoint.Checkpoints(workdir, option(config, "checkpoint_every"),
                                option(config, "max_to_keep"))
  key = jax.random.PRNGKey(config.seed)
  sample = exp.dataset.sample
  state = init_state(exp, config, key)
  start = 0
  if ckpt.latest_step() is not None:
    check_resumable(workdir, config)
    start, state = ckpt.restore(state)
    if start > config.steps:
      raise ConfigError(f"--workdir={workdir!r} is already at step {start}, beyond "
                        f"steps={config.steps}; raise steps or pass another --workdir.")
  runlog.write_provenance(workdir, config)
  recorder = Recorder(exp, config, workdir, resume_step=start)

  step = train.make_train_step(exp.game, exp.tx, config.scheme, critic_steps=config.critic_steps)
  compiled, compile_s = {}, 0.0

  def chunk_fn(n):
    nonlocal compile_s
    if n not in compiled:
      t = time.perf_counter()
      fn = jax.jit(train.make_chunk(step, n, sample, config.batch_size))
      compiled[n] = fn.lower(state).compile()
      compile_s += time.perf_counter() - t
    return compiled[n]

  picture_every = option(config, "picture_every")
  steady_s, steady_steps, ckpt_s, first = 0.0, 0, 0.0, True
  t_start = time.perf_counter()
  bar = tqdm(total=config.steps, initial=start, unit="step", disable=not progress,
             dynamic_ncols=True)
  done = start
  try:
    while done < config.steps:
      n = chunk_length(done, config.steps, config.steps_per_dispatch)
      fn = chunk_fn(n)
      t = time.perf_counter()
      new_state, chunk_metrics = fn(state)
      chunk_metrics = _to_host(chunk_metrics)
      if not first:  # the first chunk also pays for transfers and warm-up
        steady_s += time.perf_counter() - t
        steady_steps += n
      first = False
      bad = recorder.record(done, chunk_metrics)
      bar.update(n if bad is None else bad + 1)
      if "l3" in chunk_metrics:
        bar.set_postfix(l3=f"{chunk_metrics['l3'][-1]:.3g}", refresh=False)
      if bad is not None:
        break  # keep `state`: the last parameters before the divergence's chunk
      state, done = new_state, done + n
      if ckpt.should_save(done - n, done) or done == config.steps:
        t = time.perf_counter()
        ckpt.save(done, state)
        ckpt_s += time.perf_counter() - t
      if picture_every and done // picture_every > (done - n) // picture_every:
        recorder.picture(state.params, done)
  finally:
    bar.close()
    ckpt.close()
  timings = {"resumed_from": start, "wall_s": time.perf_counter() - t_start,
             "compile_s": compile_s, "checkpoint_s": ckpt_s, "log_s": recorder.log_s,
             "picture_s": recorder.picture_s,
             "steps_per_s": steady_steps / steady_s if steady_s else float("nan")}
  return finish(exp, config, workdir, state.params, int(state.step), recorder, timings)
