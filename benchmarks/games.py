"""Toy-game sweep throughput: ONE compiled program vs a Python loop of jitted steps.

The grid of ``ebm_gan.runner.programs.toy_games`` — bilinear (A = 1), Dirac-GAN and the
quadratic game × GDA / alternating GDA / OGDA / optimistic Adam /
extragradient × learning rates × initial points — runs

* vectorised: every (game, method) group vmapped over its runs, one lax.scan
  over the steps, all in one jit (:func:`ebm_gan.games.vectorised.run_groups`);
* looped: for every run, ``num_steps`` calls of the jitted single-run step
  (:func:`ebm_gan.games.vectorised.run_loop`; compilation excluded from its time).

Both record the same per-step distances (checked) and the script prints both
times, their ratio and a theory-vs-measured rate table at one learning rate.

  python benchmarks/games.py                          # 256 runs x 10 000 steps
  python benchmarks/games.py --runs 256 --steps 2000  # a few minutes on 2 CPU cores
  python benchmarks/games.py --loop-runs 2            # loop timed on 2 runs per group,
                                                      # extrapolated (marked as such)
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

from ebm_gan.games import toy as toy_games  # pylint: disable=g-import-not-at-top
from ebm_gan.games import vectorised

LEARNING_RATES = (0.03, 0.1, 0.3, 0.5)


def make_grid(runs: int):
  """15 (game, method) groups sharing ``runs`` runs: learning rates cycled, one start per run."""
  games = [toy_games.bilinear([[1.0]]), toy_games.DiracGAN("minimax"), toy_games.quadratic(2)]
  methods = [vectorised.METHODS[m] for m in
             ("gda", "alternating_gda", "ogda", "optimistic_adam", "extragradient")]
  per_group = max(1, runs // (len(games) * len(methods)))
  lrs = np.resize(np.asarray(LEARNING_RATES), per_group)
  groups = []
  for gi, game in enumerate(games):
    keys = jax.random.split(jax.random.key(gi), per_group)
    inits = jax.tree.map(np.asarray, jax.vmap(lambda k, g=game: g.init(k, 0.5))(keys))
    groups += [vectorised.Group(game, m, lrs, inits) for m in methods]
  return groups


def time_vectorised(groups, steps):
  """(compile seconds, run seconds, results) of the one-program sweep."""
  program = vectorised.compile_groups(groups, steps)
  args = vectorised._as_args(groups)  # pylint: disable=protected-access
  t = time.perf_counter()
  compiled = program.lower(*args).compile()
  compile_s = time.perf_counter() - t
  t = time.perf_counter()
  out = jax.block_until_ready(compiled(*args))
  run_s = time.perf_counter() - t
  return compile_s, run_s, vectorised._collect(*out)  # pylint: disable=protected-access


def time_loop(groups, steps, loop_runs=None):
  """(seconds, results, fraction of runs timed) of the Python loop of jitted steps."""
  if loop_runs is not None:
    groups = [g._replace(learning_rates=g.learning_rates[:loop_runs],
                         inits=jax.tree.map(lambda v: v[:loop_runs], g.inits)) for g in groups]
  loop = vectorised.make_loop(groups)
  vectorised.run_loop(groups, 2, loop=loop)  # compiles every group's step (not timed)
  t = time.perf_counter()
  results = vectorised.run_loop(groups, steps, loop=loop)
  jax.block_until_ready([r.params for r in results])
  return time.perf_counter() - t, results, groups


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=256)
  parser.add_argument("--steps", type=int, default=10_000)
  parser.add_argument("--loop-runs", type=int, default=None,
                      help="time the loop on this many runs per group and extrapolate")
  args = parser.parse_args()

  groups = make_grid(args.runs)
  n_runs = sum(len(g.learning_rates) for g in groups)
  print(f"grid: {len(groups)} (game, method) groups, {n_runs} runs x {args.steps} steps, "
        f"device {jax.devices()[0].device_kind}")
  compile_s, vec_s, vec = time_vectorised(groups, args.steps)
  loop_s, loop, timed = time_loop(groups, args.steps, args.loop_runs)
  timed_runs = sum(len(g.learning_rates) for g in timed)
  loop_total = loop_s * n_runs / timed_runs
  # same runs, same numbers: differences are float32 round-off (vmapped vs single-run fusion)
  def rel_gap(a, b):
    a = a[:len(b)]
    ok = np.isfinite(b) & (b > 1e-6 * b[:, :1])  # below, both are round-off noise
    return float(np.max(np.abs(a - b)[ok] / b[ok], initial=0.0))
  gap = max(rel_gap(a.distances, b.distances) for a, b in zip(vec, loop))
  same_nans = all((np.isnan(a.distances[:len(b.distances)]) == np.isnan(b.distances)).all()
                  for a, b in zip(vec, loop))

  extrapolated = timed_runs < n_runs
  print()
  print("| path | runs timed | steps | compile s | run s | µs per run-step |")
  print("|---|---|---|---|---|---|")
  print(f"| vectorised (1 program) | {n_runs} | {args.steps} | {compile_s:.2f} | {vec_s:.3f} | "
        f"{1e6 * vec_s / (n_runs * args.steps):.3f} |")
  print(f"| loop of jitted steps | {timed_runs} | {args.steps} | - | {loop_s:.2f} | "
        f"{1e6 * loop_s / (timed_runs * args.steps):.2f} |")
  note = f" (loop extrapolated from {timed_runs} runs)" if extrapolated else ""
  print(f"\nloop / vectorised = {loop_total:.1f} s / {vec_s:.3f} s = {loop_total / vec_s:.0f}x"
        f"{note}; with compilation: {loop_total / (vec_s + compile_s):.0f}x")

  print(f"vectorised vs loop: max relative |Δd| (d > 1e-6 d_0) = {gap:.1e}, "
        f"same divergence points: {same_nans}")

  print("\n| game | method | η | theoretical ρ | measured ρ (median) | diverged |")
  print("|---|---|---|---|---|---|")
  for g, r in zip(groups, vec):
    eta = 0.1
    idx = np.flatnonzero(np.isclose(g.learning_rates, eta))
    rates = [vectorised.measured_rate(r.distances[i], r.diverged_at[i], g.game.distance_floor())
             for i in idx]
    rho = toy_games.theoretical_rate(g.game, g.method.optimizer, g.method.scheme, eta)
    print(f"| {g.game.name} | {g.method.name} | {eta} | {rho:.6f} | {np.nanmedian(rates):.6f} | "
          f"{int((r.diverged_at[idx] >= 0).sum())}/{len(idx)} |")


if __name__ == "__main__":
  main()
