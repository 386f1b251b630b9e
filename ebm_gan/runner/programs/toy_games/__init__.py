"""The 'toy_games' program: GDA / alternating GDA / OGDA / optimistic Adam /
extragradient on the bilinear game, the Dirac-GAN and a strongly-convex–
strongly-concave quadratic game, over a learning-rate grid.

The whole grid — every (game, method, learning rate, seed) — is ONE compiled
program (:func:`ebm_gan.games.vectorised.run_groups`). For each (game, method, η)
it reports, over the seeds: the final distance ‖θ_T − θ*‖, the measured
per-step rate (least-squares slope of log-distance on the second half of the
run), the theoretical rate ρ (spectral radius of the linearised update map at
θ*, :func:`ebm_gan.games.theory.theoretical_rate`) and the first divergence step.

Outputs in ``workdir``: ``results.md`` and ``results.csv`` (one row per game,
method, η), ``runs.csv``/``.md`` (one row per run), ``config.json``, ``provenance.json``,
``summary.json``/``.md`` and, per game,
``trajectories_<game>.png`` and ``log_distance_<game>.png``.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import ml_collections
import numpy as np

from ebm_gan import optim
from ebm_gan.games import theory
from ebm_gan.games import toy
from ebm_gan.games import vectorised
from ebm_gan.runner.programs.toy_games import fields
from ebm_gan.runner.programs.toy_games import pictures
from ebm_gan.runner import record
from ebm_gan.runner import tables
from ebm_gan.runner.registry import ConfigError, Registry, check_positive, reported_as
from ebm_gan.runner.status import Status

MATRICES = ("identity", "random", "given")
SMOKE = dict(num_steps=300, num_seeds=2)


def apply_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """When ``config.smoke``: ≤ 300 steps, ≤ 2 seeds, 2 learning rates (idempotent)."""
  if config.smoke:
    config.num_steps = min(config.num_steps, SMOKE["num_steps"])
    config.num_seeds = min(config.num_seeds, SMOKE["num_seeds"])
    lrs = tuple(config.learning_rates)
    config.learning_rates = lrs if len(lrs) <= 2 else (lrs[0], lrs[len(lrs) // 2])
  return config


def _numbers(value, key):
  try:
    return np.asarray(value, np.float64)
  except (TypeError, ValueError):
    raise ConfigError(f"{key}={value!r} is not allowed; expected numbers.") from None


def _bilinear(c):
  """The bilinear game of the block ``c`` = config.bilinear."""
  m = check_positive(c.dim_x, "bilinear.dim_x", integer=True)
  n = check_positive(c.dim_y, "bilinear.dim_y", integer=True)
  if c.matrix not in MATRICES:
    raise ConfigError(f"bilinear.matrix={c.matrix!r} is not allowed; allowed: "
                      f"{', '.join(MATRICES)}.")
  if c.matrix == "identity":
    A = np.eye(m, n)
  elif c.matrix == "random":
    A = np.random.default_rng(c.matrix_seed).standard_normal((m, n))
  else:
    A = _numbers(c.A, "bilinear.A")
    if A.shape != (m, n):
      raise ConfigError(f"bilinear.A={tuple(map(tuple, np.atleast_2d(A).tolist()))!r} has "
                        f"shape {A.shape}; allowed: shape (bilinear.dim_x, bilinear.dim_y)"
                        f" = ({m}, {n}).")
  vecs = []
  for key, size in (("b", m), ("c", n)):
    v = _numbers(c[key], f"bilinear.{key}")
    if v.size and v.shape != (size,):
      raise ConfigError(f"bilinear.{key}={tuple(c[key])!r} has shape {v.shape}; allowed: "
                        f"() for zeros or shape ({size},).")
    vecs.append(v if v.size else None)
  with reported_as("bilinear"):
    return toy.bilinear(A, *vecs)


def _dirac_gan(c):
  with reported_as("dirac_gan"):
    return toy.DiracGAN(c.loss, c.penalty)


def _quadratic(c):
  check_positive(c.coupling, "quadratic.coupling")
  with reported_as("quadratic"):
    return toy.quadratic(c.dim, c.mu, c.coupling, c.matrix_seed)


# The toy games by name: each builds its game from its own config block.
GAMES = Registry("toy game", {"bilinear": _bilinear, "dirac_gan": _dirac_gan,
                              "quadratic": _quadratic})


# The named choices of a 'toy_games' config, for ``--help``: config key -> allowed names.
CHOICES = {
    "games": GAMES, "bilinear.matrix": MATRICES, "dirac_gan.loss": tuple(toy.DIRAC_LOSSES),
    "methods": tuple(vectorised.METHODS) + ("OPTIMIZER@SCHEME",),
}
DESCRIPTIONS = fields.DESCRIPTIONS  # what each field does, for --help


def build_game(name: str, config: ml_collections.ConfigDict):
  """The game ``name`` from its config block; ConfigError for bad shapes/values."""
  return GAMES.get(name, key="games")(config[name])


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a 'toy_games' config resolves to: the games, methods and rates of the grid."""
  config: ml_collections.ConfigDict
  games: list
  methods: list
  learning_rates: list


def build(config: ml_collections.ConfigDict) -> Plan:
  """Checks every name, grid and shape once and builds the grid; ConfigError before compiling."""
  config = apply_smoke(config)
  check_positive(config.num_steps, "num_steps", integer=True)
  check_positive(config.num_seeds, "num_seeds", integer=True)
  check_positive(config.critic_steps, "critic_steps", integer=True)
  check_positive(config.critic_lr_ratio, "critic_lr_ratio")
  check_positive(config.divergence_bound, "divergence_bound")
  lrs = tuple(config.learning_rates)
  if not lrs:
    raise ConfigError("learning_rates=() is not allowed; expected at least one positive number.")
  for i, lr in enumerate(lrs):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
      raise ConfigError(f"learning_rates={lrs!r} is not allowed: entry {i} is {lr!r}; "
                        "every learning rate must be a positive number.")
  if not tuple(config.games):
    raise ConfigError(f"games=() is not allowed; allowed: {', '.join(GAMES.names())}.")
  games = []
  for i, name in enumerate(config.games):
    GAMES.get(name, key=f"games[{i}]")
    games.append(build_game(name, config))
    check_positive(config[name].init_radius, f"{name}.init_radius")
  if not tuple(config.methods):
    raise ConfigError("methods=() is not allowed; expected at least one method.")
  for name in config.optimizer_options:
    if name not in optim.OPTIMIZERS:
      raise ConfigError(f"optimizer_options.{name} is not a known optimizer; allowed: "
                        f"{', '.join(sorted(optim.OPTIMIZERS))}.")
  methods = []
  for i, name in enumerate(config.methods):
    with reported_as(None):
      m = vectorised.parse_method(name, key=f"methods[{i}]")
    with reported_as("optimizer_options"):
      optim.make(m.optimizer, lrs[0], key=m.optimizer, **_options(config, m.optimizer))
    methods.append(m)
  return Plan(config, games, methods, [float(v) for v in lrs])


def _options(config, optimizer):
  opts = config.optimizer_options.get(optimizer, None)
  return {} if opts is None else dict(opts.to_dict() if hasattr(opts, "to_dict") else opts)


def _theory(game, method, lr, config):
  opts = _options(config, method.optimizer)
  return theory.theoretical_rate(
      game, method.optimizer, method.scheme, lr, critic_lr_ratio=config.critic_lr_ratio,
      critic_steps=config.critic_steps, alpha=opts.get("alpha", 1.0),
      beta=opts.get("beta", 1.0))


def _nanmedian(x):
  x = np.asarray(x, np.float64)
  return float(np.median(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


def _groups(plan: Plan):
  """One vectorised group per (game, method): runs ordered (learning rate, seed)."""
  config, lrs = plan.config, plan.learning_rates
  key = jax.random.key(config.seed)
  groups = []
  for gi, game in enumerate(plan.games):
    keys = jax.random.split(jax.random.fold_in(key, gi), config.num_seeds)
    seeds = jax.vmap(lambda k, g=game: g.init(k, config[g.name].init_radius))(keys)
    inits = jax.tree.map(lambda v: np.tile(np.asarray(v), (len(lrs),) + (1,) * (v.ndim - 1)),
                         seeds)
    run_lrs = np.repeat(np.asarray(lrs), config.num_seeds)
    for m in plan.methods:
      groups.append(vectorised.Group(game, m, run_lrs, inits, _options(config, m.optimizer)))
  return groups


def _rows(plan: Plan, groups, results):
  """(one row per game/method/η, one row per run) of the results."""
  config = plan.config
  rows, run_rows = [], []
  for g, res in zip(groups, results):
    floor = g.game.distance_floor()
    for j, lr in enumerate(plan.learning_rates):
      idx = range(j * config.num_seeds, (j + 1) * config.num_seeds)
      rates = [vectorised.measured_rate(res.distances[r], res.diverged_at[r], floor) for r in idx]
      div = [int(res.diverged_at[r]) for r in idx]
      rho = _theory(g.game, g.method, lr, config)
      for s, r in enumerate(idx):
        run_rows.append(dict(game=g.game.name, method=g.method.name, learning_rate=lr, seed=s,
                             final_distance=float(res.distances[r, -1]),
                             measured_rate=rates[s], theoretical_rate=rho,
                             diverged_at=div[s]))
      measured = _nanmedian(rates)
      rows.append(dict(
          game=g.game.name, method=g.method.name, learning_rate=lr,
          final_distance=_nanmedian(res.distances[list(idx), -1]),
          measured_rate=measured, theoretical_rate=rho,
          relative_error=abs(measured - rho) / rho if np.isfinite(measured * rho) else float("nan"),
          diverged=f"{sum(d >= 0 for d in div)}/{len(div)}",
          diverged_at_step=min((d for d in div if d >= 0), default=-1)))
  return rows, run_rows


def run(plan: Plan, workdir: str, progress: bool = True) -> dict:
  """Runs the grid as one compiled program, writes tables and plots, returns a summary.

  Runs are ordered (learning rate, seed) inside each (game, method) group; the
  initial points are θ* + init_radius·u with u uniform on the unit sphere (per
  seed, shared by every method and learning rate). Writes ``config.json``,
  ``provenance.json``, ``results.md``/``.csv``, ``runs.csv``, the pictures and
  ``summary.json``/``.md`` in ``workdir``.
  """
  config = plan.config
  os.makedirs(workdir, exist_ok=True)
  record.write_provenance(workdir, config)
  groups = _groups(plan)
  start = time.perf_counter()
  results = vectorised.run_groups(groups, config.num_steps,
                                  critic_lr_ratio=config.critic_lr_ratio,
                                  critic_steps=config.critic_steps,
                                  bound=config.divergence_bound)
  seconds = time.perf_counter() - start
  if progress:
    print(f"toy_games: {sum(len(g.learning_rates) for g in groups)} runs x "
          f"{config.num_steps} steps in one program: {seconds:.2f} s (compile included)")
  rows, run_rows = _rows(plan, groups, results)
  csv_path, md_path = tables.write(workdir, "results", rows)
  runs_path, _ = tables.write(workdir, "runs", run_rows)
  plots = []
  n = len(plan.methods)
  for gi, game in enumerate(plan.games):
    sl = slice(gi * n, (gi + 1) * n)
    rate = lambda method, lr, game=game: _theory(game, method, lr, config)
    plots += pictures.game_runs(workdir, game, groups[sl], results[sl],
                                     plan.learning_rates, config.num_seeds,
                                     config[game.name].init_radius, rate)
  if progress:
    with open(md_path) as f:
      print(f.read())
  summary = dict(status=Status.OK, num_runs=len(run_rows), num_steps=config.num_steps,
                 seconds=round(seconds, 3), table=md_path, csv=csv_path, runs_csv=runs_path,
                 plots=plots, rows=rows)
  record.write_summary(workdir, {k: v for k, v in summary.items() if k != "rows"})
  return summary
