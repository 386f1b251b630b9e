"""The 'toy_games' program: GDA / alternating GDA / OGDA / optimistic Adam /
extragradient on the bilinear game, the Dirac-GAN and a strongly-convex–
strongly-concave quadratic game, over a learning-rate grid.

The whole grid — every (game, method, learning rate, seed) — is ONE compiled
program (:func:`ebm_gan.vectorised.run_groups`). For each (game, method, η)
it reports, over the seeds: the final distance ‖θ_T − θ*‖, the measured
per-step rate (least-squares slope of log-distance on the second half of the
run), the theoretical rate ρ (spectral radius of the linearised update map at
θ*, :func:`ebm_gan.toy_games.theoretical_rate`) and the first divergence step.

Outputs in ``workdir``: ``results.md`` and ``results.csv`` (one row per game,
method, η), ``runs.csv`` (one row per run), ``config.json`` and, per game,
``trajectories_<game>.png`` and ``log_distance_<game>.png``.
"""

from __future__ import annotations

import csv
import os
import time

import jax
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections
import numpy as np

from ebm_gan import optim
from ebm_gan import toy_games
from ebm_gan import vectorised
from ebm_gan.registry import ConfigError, Registry, check_positive

GAMES = Registry("toy game")
for _g in ("bilinear", "dirac_gan", "quadratic"):
  GAMES.register(_g, _g)
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


def build_game(name: str, config: ml_collections.ConfigDict):
  """The game ``name`` from its config block; ConfigError for bad shapes/values."""
  GAMES.get(name, key="games")
  if name == "bilinear":
    c = config.bilinear
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
    try:
      return toy_games.bilinear(A, *vecs)
    except ConfigError as e:
      raise ConfigError(f"bilinear: {e}") from None
  if name == "dirac_gan":
    return toy_games.DiracGAN(config.dirac_gan.loss, config.dirac_gan.penalty)
  c = config.quadratic
  check_positive(c.coupling, "quadratic.coupling")
  return toy_games.quadratic(c.dim, c.mu, c.coupling, c.matrix_seed)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every name, grid and shape; raises ConfigError before anything compiles."""
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
  for i, name in enumerate(config.games):
    GAMES.get(name, key=f"games[{i}]")
    build_game(name, config)
    check_positive(config[name].init_radius, f"{name}.init_radius")
  if not tuple(config.methods):
    raise ConfigError("methods=() is not allowed; expected at least one method.")
  for i, name in enumerate(config.methods):
    m = vectorised.parse_method(name, key=f"methods[{i}]")
    opts = _options(config, m.optimizer)
    optim.make(m.optimizer, lrs[0], key=f"optimizer_options.{m.optimizer}", **opts)
  for name in config.optimizer_options:
    optim.OPTIMIZERS.get(name, key="optimizer_options")


def _options(config, optimizer):
  opts = config.optimizer_options.get(optimizer, None)
  return {} if opts is None else dict(opts.to_dict() if hasattr(opts, "to_dict") else opts)


def _theory(game, method, lr, config):
  opts = _options(config, method.optimizer)
  return toy_games.theoretical_rate(
      game, method.optimizer, method.scheme, lr, critic_lr_ratio=config.critic_lr_ratio,
      critic_steps=config.critic_steps, alpha=opts.get("alpha", 1.0),
      beta=opts.get("beta", 1.0))


def _nanmedian(x):
  x = np.asarray(x, np.float64)
  return float(np.median(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


def _fmt(v):
  if isinstance(v, float):
    return "nan" if not np.isfinite(v) else f"{v:.6g}"
  return str(v)


def write_tables(rows, workdir):
  """Writes ``results.md`` and ``results.csv``; returns their paths."""
  cols = list(rows[0])
  csv_path, md_path = os.path.join(workdir, "results.csv"), os.path.join(workdir, "results.md")
  with open(csv_path, "w", newline="") as f:
    w = csv.DictWriter(f, cols)
    w.writeheader()
    w.writerows(rows)
  with open(md_path, "w") as f:
    f.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
    for r in rows:
      f.write("| " + " | ".join(_fmt(r[c]) for c in cols) + " |\n")
  return md_path, csv_path


def _plot_game(game, groups, results, lrs, config, workdir):
  """Trajectories in the plot plane and log-distance vs step (seed 0, every η)."""
  methods = [g.method.name for g in groups]
  colors = plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))
  star = np.asarray(game.plane(game.equilibrium()))
  radius = config[game.name].init_radius
  paths = []
  for kind in ("trajectories", "log_distance"):
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.2), squeeze=False)
    for ax, g, res in zip(axes[0], groups, results):
      for j, lr in enumerate(lrs):
        r = j * config.num_seeds  # seed 0 of learning rate j
        if kind == "trajectories":
          ax.plot(*res.points[r].T, lw=0.7, color=colors[j], label=f"η={lr:g}")
        else:
          t = np.arange(res.distances.shape[1])
          ax.semilogy(t, res.distances[r], lw=0.9, color=colors[j], label=f"η={lr:g}")
          rho = _theory(game, g.method, lr, config)
          if np.isfinite(rho):
            log_theory = np.log(res.distances[r, 0]) + t * np.log(rho)
            ax.semilogy(t, np.where(log_theory < 69, np.exp(np.minimum(log_theory, 69)), np.nan),
                        ls="--", lw=0.6, color=colors[j])
      if kind == "trajectories":
        ax.plot(*star, "k*", ms=8)
        ax.set_xlim(star[0] - 2 * radius, star[0] + 2 * radius)
        ax.set_ylim(star[1] - 2 * radius, star[1] + 2 * radius)
        ax.set_xlabel(game.plane_labels[0])
        ax.set_ylabel(game.plane_labels[1])
      else:
        ax.set_xlabel("step")
        ax.set_ylabel("‖θ − θ*‖ (dashed: d₀ρᵗ)")
        finite = res.distances[np.isfinite(res.distances) & (res.distances > 0)]
        ax.set_ylim(max(finite.min(initial=1.0) / 3, 1e-30), 3 * finite.max(initial=1.0))
      ax.set_title(g.method.name, fontsize=9)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(game.name)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.84, wspace=0.4)
    path = os.path.join(workdir, f"{kind}_{game.name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
  return paths


def run(config: ml_collections.ConfigDict, workdir: str, progress: bool = True) -> dict:
  """Runs the grid as one compiled program, writes tables and plots, returns a summary.

  Runs are ordered (learning rate, seed) inside each (game, method) group; the
  initial points are θ* + init_radius·u with u uniform on the unit sphere (per
  seed, shared by every method and learning rate).
  """
  config = apply_smoke(config)
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  lrs = [float(v) for v in config.learning_rates]
  methods = [vectorised.parse_method(m, key=f"methods[{i}]")
             for i, m in enumerate(config.methods)]
  games = [build_game(name, config) for name in config.games]
  key = jax.random.key(config.seed)
  groups = []
  for gi, game in enumerate(games):
    keys = jax.random.split(jax.random.fold_in(key, gi), config.num_seeds)
    seeds = jax.vmap(lambda k, g=game: g.init(k, config[g.name].init_radius))(keys)
    inits = jax.tree.map(lambda v: np.tile(np.asarray(v), (len(lrs),) + (1,) * (v.ndim - 1)),
                         seeds)
    run_lrs = np.repeat(np.asarray(lrs), config.num_seeds)
    for m in methods:
      opts = _options(config, m.optimizer)
      groups.append(vectorised.Group(game, m, run_lrs, inits, opts))
  start = time.perf_counter()
  results = vectorised.run_groups(groups, config.num_steps,
                                  critic_lr_ratio=config.critic_lr_ratio,
                                  critic_steps=config.critic_steps,
                                  bound=config.divergence_bound)
  seconds = time.perf_counter() - start
  if progress:
    print(f"toy_games: {sum(len(g.learning_rates) for g in groups)} runs x "
          f"{config.num_steps} steps in one program: {seconds:.2f} s (compile included)")

  rows, run_rows = [], []
  for g, res in zip(groups, results):
    floor = g.game.distance_floor()
    for j, lr in enumerate(lrs):
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
  md_path, csv_path = write_tables(rows, workdir)
  runs_path = os.path.join(workdir, "runs.csv")
  with open(runs_path, "w", newline="") as f:
    w = csv.DictWriter(f, list(run_rows[0]))
    w.writeheader()
    w.writerows(run_rows)
  plots = []
  for gi, game in enumerate(games):
    sl = slice(gi * len(methods), (gi + 1) * len(methods))
    plots += _plot_game(game, groups[sl], results[sl], lrs, config, workdir)
  if progress:
    with open(md_path) as f:
      print(f.read())
  return dict(status="ok", num_runs=len(run_rows), num_steps=config.num_steps,
              seconds=round(seconds, 3), table=md_path, csv=csv_path, runs_csv=runs_path,
              plots=plots, rows=rows)
