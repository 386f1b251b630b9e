"""How much of the machine's matmul speed the default train step achieves.

For each width w (energy and generator w×3, statistics network w×2) and batch b:

  FLOPs/step    XLA's cost analysis of the single compiled step (``jax.jit(step)
                .lower(state, batch).compile().cost_analysis()``), and its bytes accessed
  steps/s       the step inside a compiled ``lax.scan`` chunk (the runner's chunk)
  matmul        dense float32 matmuls of the step's own hidden-layer shapes, timed in a
                scan of the same kind: forward [b,w]·[w,w], input gradient [b,w]·[w,w]ᵀ,
                weight gradient [w,b]·[b,w]
  utilisation   achieved FLOP/s (FLOPs/step × steps/s) ÷ matmul FLOP/s

The two are timed in interleaved repetitions in one process (medians). Then, at the
largest width and batch, what bounds the step: the same step without the MALA
negative phase (3 energy-gradient steps on the negatives), without the R1 penalty (its
double backward), without the MI estimator (the statistics network), and without both
of the last two: FLOPs, bytes accessed (XLA's cost analysis) and time of each.

  python benchmarks/utilisation.py [--widths 128,256,512] [--batches 256,1024] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp

from benchmarks import experiment
from benchmarks.train_step import interleaved as timed  # medians of alternating repeats


def _cost(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return cost.get("flops", float("nan")), cost.get("bytes accessed", float("nan"))


def step_costs(exp):
  """(FLOPs, bytes accessed) of ONE compiled train step by XLA's cost analysis."""
  state = experiment.initial_state(exp)
  batch = exp.dataset.sample(jax.random.PRNGKey(1), exp.config.batch_size)
  return _cost(jax.jit(experiment.train_step(exp)).lower(state, batch).compile())


def matmul_chunk(width, batch, n):
  """A compiled scan of n × (forward, input-gradient, weight-gradient) matmuls; FLOPs per item."""
  def body(carry, _):
    x, w, acc = carry
    y = x @ w                          # forward       [b,w]·[w,w]
    x = y @ w.T                        # input grad    [b,w]·[w,w]ᵀ
    acc = acc + x.T @ y                # weight grad   [w,b]·[b,w]
    return (x, w, acc), None

  def chunk(x, w):
    (x, _, acc), _ = jax.lax.scan(body, (x, w, jnp.zeros((width, width))), None, length=n)
    return x, acc
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  w = jnp.linalg.qr(jax.random.normal(k1, (width, width)))[0]  # orthogonal: x keeps its norm
  x = jax.random.normal(k2, (batch, width))
  compiled = jax.jit(chunk).lower(x, w).compile()
  return compiled, (x, w), 3 * 2 * batch * width * width


def _experiment(width, batch, extra=()):
  return experiment.default_experiment([
      ("model.energy_hidden", str((width,) * 3)), ("model.generator_hidden", str((width,) * 3)),
      ("entropy.mi.hidden", str((width,) * 2)), ("batch_size", str(batch))] + list(extra))


def utilisation_row(width, batch, n, repeats):
  exp = _experiment(width, batch)
  flops, bytes_accessed = step_costs(exp)
  step_chunk, state = experiment.default_chunk(exp, n)
  mm, mm_args, mm_flops = matmul_chunk(width, batch, n)
  t_step, t_mm = timed([(step_chunk, (state,)), (mm, mm_args)], repeats)
  achieved, peak = flops * n / t_step, mm_flops * n / t_mm
  return dict(width=width, batch=batch, flops=flops, bytes=bytes_accessed, steps=n / t_step,
              achieved=achieved, peak=peak, t_step=t_step / n)


def bounds(width, batch, n, repeats):
  """The step with parts removed (no negative-phase chain, no penalty, no estimator): FLOPs
  and time of each."""
  rows = {}
  variants = {"default": (), "no MALA negative phase": [("negative_phase.mala_steps", "0")],
              "no R1 penalty": [("penalty.name", "none")],
              "no estimator (entropy none)": [("entropy.name", "none")],
              "neither": [("penalty.name", "none"), ("entropy.name", "none")]}
  calls, costs = [], {}
  for name, extra in variants.items():
    exp = _experiment(width, batch, extra)
    costs[name] = step_costs(exp)
    calls.append(experiment.default_chunk(exp, n))
  times = timed([(c, (s,)) for c, s in calls], repeats)
  for (name, _), t in zip(variants.items(), times):
    rows[name] = (costs[name][0], costs[name][1], t / n)
  return rows


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--widths", default="128,256,512")
  p.add_argument("--batches", default="256,1024")
  p.add_argument("--steps", type=int, default=50, help="steps per timed chunk")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--quick", action="store_true", help="widths 128,256, batch 256, 10 steps, "
                 "3 repeats, no breakdown (< 1 min)")
  a = p.parse_args(argv)
  if a.quick:
    a.widths, a.batches, a.steps, a.repeats = "128,256", "256", 10, 3
  print(f"jax {jax.__version__} ({jax.devices()[0].platform}), {len(os.sched_getaffinity(0))} "
        f"cores, {a.steps} steps per chunk, {a.repeats} interleaved repeats, "
        f"load average {os.getloadavg()[0]:.2f}")
  print("| width | batch | GFLOP/step | MB accessed/step | steps/s | achieved GFLOP/s "
        "| matmul GFLOP/s | utilisation |")
  print("|---|---|---|---|---|---|---|---|")
  widths, batches = [int(w) for w in a.widths.split(",")], [int(b) for b in a.batches.split(",")]
  for w in widths:
    for b in batches:
      r = utilisation_row(w, b, a.steps, a.repeats)
      print(f"| {w} | {b} | {r['flops'] / 1e9:.3f} | {r['bytes'] / 1e6:.0f} | {r['steps']:.1f} "
            f"| {r['achieved'] / 1e9:.0f} | {r['peak'] / 1e9:.0f} | {r['achieved'] / r['peak']:.0%} "
            "|", flush=True)
  if not a.quick:
    w, b = widths[-1], batches[-1]
    print(f"\nWhat bounds the step at width {w}, batch {b}:")
    print("| step | GFLOP/step | MB accessed/step | ms/step | GFLOP/s | memory GB/s |")
    print("|---|---|---|---|---|---|")
    for name, (flops, nbytes, t) in bounds(w, b, a.steps, a.repeats).items():
      print(f"| {name} | {flops / 1e9:.3f} | {nbytes / 1e6:.0f} | {t * 1e3:.1f} "
            f"| {flops / t / 1e9:.0f} | {nbytes / t / 1e9:.1f} |", flush=True)
  print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
