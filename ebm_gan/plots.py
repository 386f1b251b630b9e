"""Matplotlib figures (Agg backend; files only, never a window)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
