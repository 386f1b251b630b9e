"""Pictures of the toy games (:mod:`ebm_gan.runner.programs.toy_games`): each method's runs in
the game's plot plane, and their distance to the equilibrium θ* against the step beside the
theory's d₀ρᵗ. One panel per method, one colour per learning rate (seed 0 of each); the
legend stands to the right of the panels, off the data. Files only (Agg)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from ebm_gan.runner import tables  # noqa: E402

# The measured distance is a broad translucent band in its learning rate's colour; the theory
# a thin black dashed line drawn over it, so that where the two agree the dashes run along the
# band's middle, and where they part both are seen.
MEASURED_STYLE = dict(lw=2.6, alpha=0.5, zorder=2)
THEORY_STYLE = dict(ls=(0, (4, 2)), lw=1.0, color="black", zorder=3)
STAR_STYLE = dict(marker="*", color="black", ms=10, ls="none", zorder=4, label="θ* (equilibrium)")
FLOOR = 1e-30  # the lowest distance drawn (log axis)


def game_runs(workdir: str, game, groups, results, lrs, num_seeds: int, radius: float,
              rate) -> list[str]:
  """Per toy game: trajectories in its plot plane and ‖θ − θ*‖ against the step.

  One panel per method, one curve per learning rate (seed 0 of each), and the theory's
  d₀ρᵗ for the rate ``rate(method, lr)``. Returns the paths of ``trajectories_<game>.png``
  and ``log_distance_<game>.png``.
  """
  figures = {
      "trajectories": trajectories_figure(game, groups, results, lrs, num_seeds, radius),
      "log_distance": distance_figure(game, groups, results, lrs, num_seeds, rate)}
  paths = []
  for kind, fig in figures.items():
    path = os.path.join(workdir, f"{kind}_{game.name}.png")
    tables.save_atomically(path, lambda p, fig=fig: fig.savefig(p, dpi=110))
    plt.close(fig)
    paths.append(path)
  return paths


def _panels(game, groups):
  """A row of panels, one per method (sharing both axes), titled; returns (fig, axes)."""
  fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups) + 1.6, 3.4),
                           squeeze=False, sharex=True, sharey=True, layout="constrained")
  for ax, g in zip(axes[0], groups):
    ax.set_title(g.method.name, fontsize=9)
  fig.suptitle(game.name)
  return fig, axes[0]


def _colors(lrs):
  return plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))


def _outside_legend(fig, handles, title: str) -> None:
  """The legend right of the panels (constrained layout makes room for it)."""
  fig.legend(handles=handles, loc="outside right upper", fontsize=7, title=title,
             title_fontsize=7, framealpha=0.9)


def trajectories_figure(game, groups, results, lrs, num_seeds: int, radius: float):
  """The runs (seed 0 per learning rate) in ``game``'s plot plane around θ* (marked), one panel
  per method, all on θ* ± 2·``radius``; returns the figure."""
  colors = _colors(lrs)
  star = np.asarray(game.plane(game.equilibrium()))
  fig, axes = _panels(game, groups)
  for ax, res in zip(axes, results):
    for j, lr in enumerate(lrs):
      ax.plot(*res.points[j * num_seeds].T, lw=0.7, color=colors[j], label=f"η={lr:g}")
    ax.plot(*star, **STAR_STYLE)
    ax.set_aspect("equal")
    ax.set_xlabel(game.plane_labels[0])
  axes[0].set_xlim(star[0] - 2 * radius, star[0] + 2 * radius)
  axes[0].set_ylim(star[1] - 2 * radius, star[1] + 2 * radius)
  axes[0].set_ylabel(game.plane_labels[1])
  _outside_legend(fig, axes[0].get_legend_handles_labels()[0], "seed 0 per η")
  return fig


def distance_figure(game, groups, results, lrs, num_seeds: int, rate):
  """‖θ_t − θ*‖ (seed 0 per learning rate) on a log axis shared by every method's panel,
  with the theory's d₀ρᵗ (``rate(method, lr)`` = ρ) dashed on top; returns the figure."""
  colors = _colors(lrs)
  fig, axes = _panels(game, groups)
  for ax, g, res in zip(axes, groups, results):
    for j, lr in enumerate(lrs):
      _distance_curve(ax, res.distances[j * num_seeds], rate(g.method, lr), colors[j],
                      f"η={lr:g}")
    ax.set_xlabel("step")
  drawn = np.concatenate([res.distances[j * num_seeds] for res in results
                          for j in range(len(lrs))])
  drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
  axes[0].set_ylim(max(drawn.min(initial=1.0) / 3, FLOOR), 3 * drawn.max(initial=1.0))
  axes[0].set_ylabel("‖θ − θ*‖ (log scale)")
  handles = axes[0].get_legend_handles_labels()[0] + [
      matplotlib.lines.Line2D([], [], color="0.45", label="measured", **MEASURED_STYLE),
      matplotlib.lines.Line2D([], [], label="theory d₀ρᵗ", **THEORY_STYLE)]
  _outside_legend(fig, handles, "seed 0 per η")
  return fig


def _distance_curve(ax, distances, rho: float, color, label: str) -> None:
  """‖θ_t − θ*‖ on a log axis, and the theory's d₀ρᵗ over it (where it is finite)."""
  t = np.arange(distances.shape[0])
  ax.semilogy(t, distances, color=color, label=label, **MEASURED_STYLE)
  if np.isfinite(rho):
    log_theory = np.log(distances[0]) + t * np.log(rho)
    ax.semilogy(t, np.where(log_theory < 69, np.exp(np.minimum(log_theory, 69)), np.nan),
                **THEORY_STYLE)
