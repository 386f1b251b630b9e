"""Pictures of a run: samples over energy contours and the energy landscape (2-D
data), a grid of samples (image data), training curves. Files only (Agg backend)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402


def energy_grid(energy_fn, scale: float, resolution: int = 160):
  """U on a resolution² grid over [−scale, scale]²: returns (xs, ys, U[res, res])."""
  xs = np.linspace(-scale, scale, resolution, dtype=np.float32)
  gx, gy = np.meshgrid(xs, xs, indexing="xy")
  pts = np.stack([gx.ravel(), gy.ravel()], 1)
  return xs, xs, np.asarray(energy_fn(pts)).reshape(resolution, resolution)


def samples_over_energy(path: str, samples, energy_fn, scale: float, data=None,
                        title: str = "") -> None:
  """Saves a PNG: generated samples (and data, if given) over the contours of U."""
  xs, ys, u = energy_grid(energy_fn, scale)
  fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
  # exp(U − max U) is the unnormalised density q_m on the grid; contour its log.
  cs = ax.contourf(xs, ys, u - u.max(), levels=30, cmap="viridis")
  fig.colorbar(cs, ax=ax, fraction=0.046, label="U(x) − max U")
  if data is not None:
    ax.scatter(data[:, 0], data[:, 1], s=2, c="white", alpha=0.4, label="data")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, c="red", alpha=0.5, label="generator")
  ax.set_xlim(-scale, scale)
  ax.set_ylim(-scale, scale)
  ax.set_aspect("equal")
  ax.legend(loc="upper right", markerscale=4, fontsize=8)
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def landscape(path: str, samples, energy_fn, scale: float, data=None, title: str = "") -> None:
  """Saves a two-panel PNG: samples (and data) over the contours of U, and U as a surface map.

  Args:
    path: the PNG file.
    samples: generator samples [N, 2].
    energy_fn: ``x[M, 2] -> U[M]`` (higher = more probable).
    scale: the plot covers [−scale, scale]².
    data: optional data samples [N', 2], drawn in white.
    title: the figure's title.
  """
  xs, ys, u = energy_grid(energy_fn, scale, resolution=120)
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), dpi=80)
  left.contourf(xs, ys, u - u.max(), levels=30, cmap="viridis")
  if data is not None:
    left.scatter(data[:, 0], data[:, 1], s=2, c="white", alpha=0.4)
  left.scatter(samples[:, 0], samples[:, 1], s=2, c="red", alpha=0.5)
  left.set_title("samples over U's contours", fontsize=9)
  im = right.imshow(u, origin="lower", extent=(-scale, scale, -scale, scale), cmap="magma")
  fig.colorbar(im, ax=right, fraction=0.046, label="U(x)")
  right.set_title("energy landscape U", fontsize=9)
  for ax in (left, right):
    ax.set_xlim(-scale, scale)
    ax.set_ylim(-scale, scale)
    ax.set_aspect("equal")
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def image_grid(path: str, images, columns: int = 8, title: str = "") -> None:
  """Saves a grid of image samples [N, H, W, C] (values in [-1, 1] or [0, 1]) as one PNG."""
  images = np.asarray(images, np.float32)
  if images.min() < 0:
    images = (images + 1) / 2
  images = np.clip(images, 0, 1)
  n, h, w, c = images.shape
  rows = -(-n // columns)
  grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
  for i, img in enumerate(images):
    r, col = divmod(i, columns)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = img
  fig, ax = plt.subplots(figsize=(columns, rows), dpi=60)
  ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None)
  ax.axis("off")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def save_samples(path: str, samples, energy_fn=None, scale: float = 1.0, data=None,
                 title: str = "") -> bool:
  """The picture that fits the samples' shape; False (nothing written) if they are not finite."""
  samples = np.asarray(samples)
  if not np.all(np.isfinite(samples)):
    return False
  if samples.ndim == 4:
    image_grid(path, samples[:64], title=title)
  elif samples.ndim == 2 and samples.shape[1] == 2 and energy_fn is not None:
    landscape(path, samples, energy_fn, scale, data=data, title=title)
  else:
    return False
  return True


def _panel(name: str) -> str:
  """The panel a metric is drawn in: per-player norms share one panel per kind."""
  head = name.split("/", 1)[0]
  if head in ("grad_norm", "param_norm", "update_norm"):
    return head
  if name.startswith("loss_"):
    return "losses"
  return name


def training_curves(path: str, steps, series: dict) -> None:
  """Saves a PNG of the training curves: losses together, per-player norms together (log y)."""
  panels: dict[str, dict] = {}
  for name, values in series.items():
    panels.setdefault(_panel(name), {})[name] = np.asarray(values, np.float64)
  cols = min(3, len(panels))
  rows = -(-len(panels) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), dpi=80, squeeze=False)
  for ax, (title, curves) in zip(axes.ravel(), panels.items()):
    for name, values in curves.items():
      ax.plot(steps, values, lw=0.8, label=name.split("/")[-1] if len(curves) > 1 else None)
    if title.endswith("_norm") and all(np.nanmin(v) > 0 for v in curves.values()
                                       if np.isfinite(v).any()):
      ax.set_yscale("log")
    if len(curves) > 1:
      ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
  for ax in axes.ravel()[len(panels):]:
    ax.axis("off")
  fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.93, hspace=0.45, wspace=0.25)
  fig.savefig(path)
  plt.close(fig)


def game_runs(workdir: str, game, groups, results, lrs, num_seeds: int, radius: float,
              rate) -> list[str]:
  """Per toy game: trajectories in its plot plane and ‖θ − θ*‖ against the step.

  One panel per method, one curve per learning rate (seed 0 of each), the
  dashed line d₀ρᵗ of the theoretical rate ``rate(method, lr)``. Returns the
  paths of ``trajectories_<game>.png`` and ``log_distance_<game>.png``.
  """
  colors = plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))
  star = np.asarray(game.plane(game.equilibrium()))
  paths = []
  for kind in ("trajectories", "log_distance"):
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.2), squeeze=False)
    for ax, g, res in zip(axes[0], groups, results):
      for j, lr in enumerate(lrs):
        r = j * num_seeds  # seed 0 of learning rate j
        if kind == "trajectories":
          ax.plot(*res.points[r].T, lw=0.7, color=colors[j], label=f"η={lr:g}")
        else:
          _distance_curve(ax, res.distances[r], rate(g.method, lr), colors[j], f"η={lr:g}")
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


def _distance_curve(ax, distances, rho: float, color, label: str) -> None:
  """‖θ_t − θ*‖ on a log axis, and the theory's d₀ρᵗ dashed (where it is finite)."""
  t = np.arange(distances.shape[0])
  ax.semilogy(t, distances, lw=0.9, color=color, label=label)
  if np.isfinite(rho):
    log_theory = np.log(distances[0]) + t * np.log(rho)
    ax.semilogy(t, np.where(log_theory < 69, np.exp(np.minimum(log_theory, 69)), np.nan),
                ls="--", lw=0.6, color=color)
