"""The 'ebm_gan' program: train a game on a 2-D toy dataset and write a run folder.

Writes into ``workdir``:
  config.json      the resolved config
  metrics.jsonl    one JSON object per logged step (losses, L1/L3, entropy, norms, diverged)
  samples.png      generator samples over the energy's contours (and the data)
  curves.png       training curves
  summary.json     final metrics (modes covered, high-quality %, losses, timings, status)
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from ebm_gan import builders
from ebm_gan import metrics as metrics_lib
from ebm_gan import plots
from ebm_gan import train

OK, DIVERGED = "ok", "diverged"
validate = builders.validate


def _to_host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


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


def _write_metrics(f, first_step: int, chunk_metrics: dict, log_every: int, stop: int | None,
                   diverged_at: int | None):
  n = len(next(iter(chunk_metrics.values())))
  for i in range(n if stop is None else stop + 1):
    step = first_step + i + 1
    if step % log_every and i != stop:
      continue
    row = {"step": step, **{k: float(v[i]) for k, v in chunk_metrics.items()}}
    row["diverged"] = diverged_at is not None and step >= diverged_at
    f.write(json.dumps(row) + "\n")


def format_table(rows: dict) -> str:
  """A two-column markdown table of a flat dict."""
  width = max(len(k) for k in rows)
  lines = [f"| {'metric'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
  for k, v in rows.items():
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    lines.append(f"| {k.ljust(width)} | {text} |")
  return "\n".join(lines)


def evaluate(exp, params, key, config) -> dict:
  """Final sample-quality metrics and the samples-over-energy picture's inputs."""
  x_gen, _ = exp.game.sample(params, key, config.eval_samples)
  x_gen = np.asarray(x_gen)
  out = {"samples": x_gen}
  if hasattr(exp.dataset, "modes"):
    out.update(metrics_lib.mode_metrics(x_gen, exp.dataset.modes, exp.dataset.std))
  return out


def run(config, workdir: str, progress: bool = True) -> dict:
  """Trains the configured game and writes the run folder; returns the summary dict.

  The summary's ``status`` is 'ok' or 'diverged' (NaN/Inf or a loss above
  ``config.divergence_bound``); a diverged run keeps its metrics up to the
  divergence and still writes its summary.
  """
  exp = builders.build(config)  # validates first: user errors before any compile
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))

  key = jax.random.PRNGKey(config.seed)
  sample = exp.dataset.sample
  state = train.init_state(exp.game, exp.tx, key, sample(key, config.batch_size))
  step = train.make_train_step(exp.game, exp.tx, config.scheme, critic_steps=config.critic_steps)
  per_chunk = min(config.steps_per_dispatch, config.steps)
  compiled, compile_s = {}, 0.0

  def chunk_fn(n):
    nonlocal compile_s
    if n not in compiled:
      t = time.perf_counter()
      fn = jax.jit(train.make_chunk(step, n, sample, config.batch_size))
      compiled[n] = fn.lower(state).compile()
      compile_s += time.perf_counter() - t
    return compiled[n]

  status, diverged_at, steady_s, steady_steps = OK, None, 0.0, 0
  t_start = time.perf_counter()
  bar = tqdm(total=config.steps, unit="step", disable=not progress, dynamic_ncols=True)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as log:
    done = 0
    while done < config.steps:
      n = min(per_chunk, config.steps - done)
      fn = chunk_fn(n)
      t = time.perf_counter()
      new_state, chunk_metrics = fn(state)
      chunk_metrics = _to_host(chunk_metrics)
      if done:  # the first chunk also pays for transfers and warm-up
        steady_s += time.perf_counter() - t
        steady_steps += n
      bad = first_bad_step(chunk_metrics, config.divergence_bound)
      if bad is not None:
        status, diverged_at = DIVERGED, done + bad + 1
      _write_metrics(log, done, chunk_metrics, config.log_every, bad, diverged_at)
      bar.update(n if bad is None else bad + 1)
      bar.set_postfix(l3=f"{chunk_metrics['l3'][-1]:.3g}" if "l3" in chunk_metrics else None)
      if bad is not None:
        break  # keep `state`: the last parameters before the divergence's chunk
      state, done = new_state, done + n
  bar.close()
  wall_s = time.perf_counter() - t_start

  summary = {"status": status, "steps_done": int(state.step), "diverged_at": diverged_at,
             "wall_s": wall_s, "compile_s": compile_s,
             "steps_per_s": steady_steps / steady_s if steady_s else float("nan")}
  if status == OK:
    last = {k: float(v[-1]) for k, v in chunk_metrics.items()
            if k.startswith("loss_") or k in ("l1", "l3", "entropy")}
    summary.update(last)
  ev = evaluate(exp, state.params, jax.random.fold_in(key, 2**31 - 1), config)
  samples = ev.pop("samples")
  summary.update(ev)
  if np.all(np.isfinite(samples)):
    energy = lambda x: exp.game.energy_fn(state.params)(x) if hasattr(exp.game, "energy_fn") \
        else exp.game.discriminator.apply(state.params["discriminator"], x)
    title = (f"{config.dataset}, step {int(state.step)}: "
             + (f"{summary['modes_covered']}/{summary['num_modes']} modes, "
                f"{100 * summary['high_quality']:.1f}% high-quality" if "modes_covered" in summary
                else status))
    plots.samples_over_energy(os.path.join(workdir, "samples.png"), samples, jax.jit(energy),
                              exp.dataset.scale, data=np.asarray(sample(key, 1000)), title=title)
  _plot_curves(workdir)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def _plot_curves(workdir):
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  if not rows:
    return
  names = [k for k in rows[0] if k not in ("step", "diverged")]
  steps = np.array([r["step"] for r in rows])
  plots.training_curves(os.path.join(workdir, "curves.png"), steps,
                        {k: np.array([r[k] for r in rows]) for k in names})
