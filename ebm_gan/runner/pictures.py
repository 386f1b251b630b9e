"""Pictures of a run: samples over the energy (2-D data) on one fixed scale, the tiled
evolution of a run's periodic pictures, a grid of samples (image data), a sweep report's
sample panels; training curves live in :mod:`ebm_gan.runner.curves`, the toy games' pictures
in :mod:`ebm_gan.runner.programs.toy_games.pictures`. Files only (Agg)."""

from __future__ import annotations

import math
import os
import textwrap

import matplotlib
import matplotlib.patches

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from ebm_gan import metrics  # noqa: E402
from ebm_gan.runner import tables  # noqa: E402
from ebm_gan.runner.status import Status  # noqa: E402
from ebm_gan.runner.curves import training_curves  # noqa: E402,F401  (re-exported)


# Every energy picture shows the energy model's normalised log-density over VIEW times the
# data's box, log q_m(x) = U(x) − log Ẑ_m with Ẑ_m over the plane, the summary's (docs/theory.md
# (9.3); mass q_m puts off the box lowers every colour inside it), which does not
# depend on U's arbitrary offset, on this FIXED scale (nats), with one perceptually uniform
# colour map, so that a run's pictures compare step to step and run to run. A density of the
# data has its peaks at log p: +0.9 nats at the 25-gaussians' modes (σ 0.05), +1.8 at the
# 8-gaussians' (σ 0.02), about −3 on the swissroll.
LOGQ_FLOOR, LOGQ_CEIL = -14.0, 4.0
VIEW = 1.5  # energy pictures show 1.5× the data's box (drawn dashed): q_m's mass off it shows
LEVELS = np.linspace(LOGQ_FLOOR, LOGQ_CEIL, 37)
CMAP = "viridis"
LOGQ_LABEL = "log q_m(x)  (nats;\nexp U normalised over the plane)"  # two lines: short figures
DATA_STYLE = dict(s=3, c="white", edgecolors="none", alpha=0.6, label="data")
SAMPLE_STYLE = dict(s=3, c="#e8000b", edgecolors="none", alpha=0.6, label="generator samples")
MIN_PANELS_WIDTH = 5.0  # inches (400 px): a report's sample panels, even of one column


def energy_grid(energy_fn, scale: float, resolution: int = 160):
  """U on a resolution² grid over [−scale, scale]²: returns (xs, ys, U[res, res])."""
  xs = np.linspace(-scale, scale, resolution, dtype=np.float32)
  gx, gy = np.meshgrid(xs, xs, indexing="xy")
  pts = np.stack([gx.ravel(), gy.ravel()], 1)
  return xs, xs, np.asarray(energy_fn(pts)).reshape(resolution, resolution)


def plane_log_z(energy_fn, scale: float) -> float:
  """log Ẑ_m over the plane around the picture's box (:func:`ebm_gan.metrics.log_partition`,
  the summary's normaliser), so that the colours are the summary's log q_m."""
  return metrics.log_partition(energy_fn, scale)


def log_density(u, scale: float, log_z: float | None = None):
  """log q_m = U − log Ẑ_m, clipped to [LOGQ_FLOOR, LOGQ_CEIL]: the pictures' fixed scale.
  ``log_z``: the plane's (:func:`plane_log_z`); None: log Σ cell·e^U on the grid of
  :func:`energy_grid` over [−scale, scale]² (pictures saved before the plane's was kept)."""
  u = np.asarray(u, np.float64)
  finite = u[np.isfinite(u)]
  if finite.size == 0:
    return np.full(u.shape, LOGQ_FLOOR)
  if log_z is None or not np.isfinite(log_z):
    cell = (2.0 * scale / (u.shape[0] - 1)) * (2.0 * scale / (u.shape[1] - 1))
    top = finite.max()
    log_z = top + np.log(np.sum(np.exp(finite - top)) * cell)
  return np.clip(np.nan_to_num(u - log_z, nan=LOGQ_FLOOR), LOGQ_FLOOR, LOGQ_CEIL)


def energy_panel(ax, xs, u, scale: float, samples=None, data=None, labels: bool = True,
                 log_z: float | None = None, box: float | None = None):
  """Draws log q_m (fixed scale) over [−scale, scale]² with data and samples on ``ax``, and
  the data's box ±``box`` dashed; returns the contour set."""
  cs = ax.contourf(xs, xs, log_density(u, scale, log_z), levels=LEVELS, cmap=CMAP,
                   extend="both")
  if box is not None and box < scale:
    ax.add_patch(plt.Rectangle((-box, -box), 2 * box, 2 * box, fill=False, ls="--", lw=0.8,
                               ec="white", alpha=0.8, label="data's box"))
  if data is not None:
    ax.scatter(data[:, 0], data[:, 1], **DATA_STYLE)
  if samples is not None:
    ax.scatter(samples[:, 0], samples[:, 1], **SAMPLE_STYLE)
  ax.set_xlim(-scale, scale)
  ax.set_ylim(-scale, scale)
  ax.set_aspect("equal")
  if labels:
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
  return cs


def _legend(ax, outside: str | None = None, **kwargs):
  """``ax``'s legend, its markers opaque and framed; ``outside``: instead the figure's legend
  of ``ax``'s entries at that 'outside …' location, which a constrained layout keeps whole."""
  style = dict(markerscale=4, fontsize=8, framealpha=0.85, **kwargs)
  leg = (ax.figure.legend(*ax.get_legend_handles_labels(), loc=outside, **style) if outside
         else ax.legend(**style))
  for handle in leg.legend_handles:
    handle.set_alpha(1)
    if isinstance(handle, matplotlib.patches.Rectangle):
      handle.set_edgecolor("0.3")  # the data's box: white on the picture, grey on the frame
    elif tuple(np.atleast_2d(handle.get_facecolor())[0][:3]) == (1.0, 1.0, 1.0):
      handle.set_edgecolor("0.4")  # white data points, visible on the legend's frame
  return leg


def _colorbar(fig, cs, ax):
  """The fixed scale's labelled colour bar of ``cs`` (filled, or lines: then each level's line
  is drawn across the bar, thick enough to read) beside ``ax``."""
  cb = fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.03,
                    ticks=np.arange(LOGQ_FLOOR, LOGQ_CEIL + 0.1, 2))
  for lines in cb.lines:
    lines.set_linewidths(2.5)
  cb.set_label(LOGQ_LABEL, fontsize=8)
  return cb


def samples_over_energy(path: str, samples, energy_fn, scale: float, data=None,
                        title: str = "") -> None:
  """Saves a PNG: generated samples (and data, if given) over log q_m on the fixed scale,
  over :data:`VIEW` times the data's box [−scale, scale]² (dashed)."""
  view = VIEW * scale
  xs, _, u = energy_grid(energy_fn, view, resolution=240)
  fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100, layout="constrained")
  cs = energy_panel(ax, xs, u, view, samples, data, log_z=plane_log_z(energy_fn, scale),
                    box=scale)
  _colorbar(fig, cs, ax)
  _legend(ax, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, borderaxespad=0.2)
  fig.suptitle(title, fontsize=10)
  save_figure(path, fig)


def landscape(path: str, samples, energy_fn, scale: float, data=None, title: str = "") -> None:
  """Saves a two-panel PNG (:func:`landscape_figure`), and the drawn arrays beside it
  (``<path minus .png>.npz``: grid, U, samples, data), which let :func:`evolution` tile a
  run's pictures on one scale.

  Args:
    path: the PNG file.
    samples: generator samples [N, 2].
    energy_fn: ``x[M, 2] -> U[M]`` (higher = more probable).
    scale: the data's box [−scale, scale]²; the plot covers :data:`VIEW` times it.
    data: optional data samples [N', 2].
    title: the figure's title.
  """
  box, scale = scale, VIEW * scale
  xs, _, u = energy_grid(energy_fn, scale, resolution=180)
  log_z = plane_log_z(energy_fn, box)
  tables.save_atomically(os.path.splitext(path)[0] + ".npz", lambda p: np.savez_compressed(
      p, xs=xs, u=u, samples=samples, data=np.zeros((0, 2)) if data is None else data,
      scale=scale, log_z=log_z, box=box))
  save_figure(path, landscape_figure(xs, u, scale, log_z, box, samples, data, title))


def landscape_figure(xs, u, scale: float, log_z: float | None, box: float, samples, data=None,
                     title: str = ""):
  """Two panels of U on the grid ``xs``² over [−scale, scale]² (the data's box ±``box``
  dashed; ``log_z`` as in :func:`log_density`); returns the figure.

  Left: data and generator samples over contour lines of log q_m, with a colour bar that
  keys the lines' levels. Right: log q_m alone, filled, on the fixed scale (see
  :data:`LOGQ_FLOOR`), with its colour bar.
  """
  fig, (left, right) = plt.subplots(1, 2, figsize=(10.4, 4.8), dpi=80, layout="constrained")
  lines = left.contour(xs, xs, log_density(u, scale, log_z), levels=LEVELS[::3], cmap=CMAP,
                       linewidths=0.7)
  if data is not None:
    left.scatter(data[:, 0], data[:, 1], **dict(DATA_STYLE, c="0.35"))
  left.scatter(samples[:, 0], samples[:, 1], **SAMPLE_STYLE)
  cs = energy_panel(right, xs, u, scale, log_z=log_z, box=box)
  for ax in (left, right):
    ax.set_xlim(-scale, scale)
    ax.set_ylim(-scale, scale)
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
  left.set_title("lines: log q_m", fontsize=9, loc="right")
  right.set_title("log q_m (fixed scale)", fontsize=9)
  _legend(left, loc="lower left", bbox_to_anchor=(0.0, 1.06), ncols=2, borderaxespad=0.2)
  _colorbar(fig, lines, left)
  _colorbar(fig, cs, right)
  fig.suptitle(title, fontsize=10)
  return fig


def save_figure(path: str, fig) -> None:
  """Writes ``fig`` to ``path`` atomically (:func:`ebm_gan.runner.tables.save_atomically`)
  and closes it."""
  tables.save_atomically(path, fig.savefig)
  plt.close(fig)


def evolution(folder: str, path: str, max_tiles: int = 8) -> str | None:
  """Tiles a run's periodic pictures (their ``step_*.npz``) into one figure at ``path``.

  At most ``max_tiles`` steps, evenly spaced, the last included; every tile on the
  fixed scale, with one colour bar and one legend. Returns ``path``, or None when
  the run drew no periodic picture.
  """
  names = sorted(n for n in os.listdir(folder) if n.startswith("step_") and n.endswith(".npz")) \
      if os.path.isdir(folder) else []
  if not names:
    return None
  picks = sorted({int(round(i)) for i in np.linspace(0, len(names) - 1, min(max_tiles,
                                                                              len(names)))})
  cols = min(4, len(picks))
  rows = -(-len(picks) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols + 1.2, 2.9 * rows + 0.9), dpi=80,
                           squeeze=False, sharex=True, sharey=True, layout="constrained")
  cs = None
  for ax, i in zip(axes.ravel(), picks):
    with np.load(os.path.join(folder, names[i])) as z:
      cs = energy_panel(ax, z["xs"], z["u"], float(z["scale"]), z["samples"],
                        z["data"] if len(z["data"]) else None, labels=False,
                        log_z=float(z["log_z"]) if "log_z" in z.files else None,
                        box=float(z["box"]) if "box" in z.files else None)
    ax.set_title(f"step {int(names[i][5:-4])}", fontsize=9)
  for ax in axes.ravel()[len(picks):]:
    ax.axis("off")
  for ax in axes[:, 0]:
    ax.set_ylabel("x₂")
  for ax in axes[-1, :]:
    ax.set_xlabel("x₁")
  _colorbar(fig, cs, axes)
  _legend(axes[0, 0], outside="outside upper left", ncols=3)
  save_figure(path, fig)
  return path


def _tiled(images, columns: int = 8) -> np.ndarray:
  """Images [N, H, W, C] (values in [-1, 1] or [0, 1]) tiled into one [rows·(H+1)+1, ...]
  array with a white line between them, in [0, 1]. C ∉ {1, 3} (4 stacked digits) is shown as
  the C channels side by side in grey, [N, H, C·W, 1]."""
  images = np.asarray(images, np.float32)
  if images.shape[-1] not in (1, 3):
    n, h, w, c = images.shape
    images = images.transpose(0, 1, 3, 2).reshape(n, h, c * w, 1)
  if images.min() < 0:
    images = (images + 1) / 2
  images = np.clip(images, 0, 1)
  n, h, w, c = images.shape
  rows = -(-n // columns)
  grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
  for i, img in enumerate(images):
    r, col = divmod(i, columns)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = img
  return grid


def _show_tiles(ax, images, columns: int = 8) -> tuple[int, int]:
  """Draws :func:`_tiled` on ``ax``; returns the grid's (height, width) in pixels. Images whose
  C channels are laid side by side (C ∉ {1, 3}) take columns / √C per row, so that the grid
  of C-times-wide tiles stays about square."""
  channels = np.shape(images)[-1]
  if channels not in (1, 3):
    columns = max(1, round(columns / math.sqrt(channels)))
  grid = _tiled(images, columns)
  ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid,
            cmap="gray" if grid.shape[-1] == 1 else None)
  return grid.shape[:2]


def image_grid(path: str, images, columns: int = 8, title: str = "") -> None:
  """Saves a grid of image samples [N, H, W, C] (values in [-1, 1] or [0, 1]) as one PNG."""
  fig, ax = plt.subplots(figsize=(columns, columns), dpi=60)
  height, width = _show_tiles(ax, images, columns)
  fig.set_size_inches(columns, columns * height / width + 0.4)
  ax.axis("off")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  save_figure(path, fig)


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


def label_cells(filled, rows: int, cols: int) -> dict:
  """Where a grid with blank cells carries its labels: each column's title on its top filled
  cell, its x label on its bottom one, each row's name on its leftmost one, the legend on the
  first filled cell (row by row). ``filled``: the (row, column) pairs that hold a panel."""
  filled = set(filled)
  in_col = {j: sorted(i for i, jj in filled if jj == j) for j in range(cols)}
  in_row = {i: sorted(j for ii, j in filled if ii == i) for i in range(rows)}
  return {"title": {(c[0], j) for j, c in in_col.items() if c},
          "xlabel": {(c[-1], j) for j, c in in_col.items() if c},
          "ylabel": {(i, r[0]) for i, r in in_row.items() if r},
          "legend": min(filled, default=None)}


def sample_panels(path: str, methods, datasets, sample_files: dict) -> str:
  """Saves :func:`sample_panels_figure` at ``path``; returns ``path``."""
  save_figure(path, sample_panels_figure(methods, datasets, sample_files))
  return path


def sample_panels_figure(methods, datasets, sample_files: dict):
  """A grid of panels, rows = methods, columns = datasets: generator samples over data.

  ``sample_files[(method, dataset)]`` is a ``samples.npz`` (``samples``, ``data``,
  ``scale``) written by a run; a missing cell is left blank, and the labels move to the
  cells that are drawn (:func:`label_cells`). Each row's method is written beside its
  leftmost panel, left of the x₂ label; the legend stands above the panels. A report of one
  column draws its panel larger, and no figure is narrower than :data:`MIN_PANELS_WIDTH`
  inches, so that the legend and a long method name fit. Returns the figure.
  """
  rows, cols = len(methods), len(datasets)
  side = max(2.6, 4.0 / cols)  # inches per panel
  fig, axes = plt.subplots(rows, cols, dpi=80, squeeze=False, layout="constrained",
                           figsize=(max(MIN_PANELS_WIDTH, side * cols + 1.0), side * rows + 0.8))
  labels = label_cells([(i, j) for i, m in enumerate(methods) for j, d in enumerate(datasets)
                        if (m, d) in sample_files], rows, cols)
  drew_points = False
  for i, method in enumerate(methods):
    for j, dataset in enumerate(datasets):
      ax = axes[i, j]
      file = sample_files.get((method, dataset))
      if file is None:
        ax.axis("off")
        continue
      images = _sample_cell(ax, file)
      drew_points = drew_points or not images
      if (i, j) in labels["title"]:
        ax.set_title(dataset, fontsize=10)
      if (i, j) in labels["xlabel"]:
        ax.set_xlabel("64 generator samples" if images else "x₁", fontsize=8)
      if (i, j) in labels["ylabel"]:
        ax.set_ylabel("" if images else "x₂", fontsize=8)
        ax.annotate(textwrap.fill(method, 32), xy=(0, 0.5), xycoords=ax.yaxis.label,
                    xytext=(-6, 0), textcoords="offset points", ha="right", va="center",
                    rotation=90, fontsize=9, fontweight="bold")
  if labels["legend"] is not None and drew_points:  # images have no data/samples legend
    _legend(axes[labels["legend"]], outside="outside upper center", ncols=2)
  return fig


def _sample_cell(ax, file: str) -> bool:
  """One report panel: a ``samples.npz``'s generator samples over its data, on its box, or
  for images, 64 of its samples tiled. Returns whether it drew images."""
  with np.load(file) as z:
    if z["samples"].ndim == 4:
      _show_tiles(ax, z["samples"][:64])
      ax.set_xticks([])
      ax.set_yticks([])
      return True
    scale = 1.1 * float(z["scale"])  # a margin: mixtures' modes sit near the box's edge
    ax.scatter(z["data"][:, 0], z["data"][:, 1], **dict(DATA_STYLE, c="0.6"))
    ax.scatter(z["samples"][:, 0], z["samples"][:, 1], **SAMPLE_STYLE)
  ax.set_xlim(-scale, scale)
  ax.set_ylim(-scale, scale)
  ax.set_aspect("equal")
  ax.tick_params(labelsize=7)
  return False


def run_title(dataset: str, summary: dict, status: str) -> str:
  """A final picture's title: the dataset, the step and the run's quality (modes covered, by the
  protocol's count and by the stricter ≥ 20, and high-quality share on a mixture, else MMD² to
  held-out data), with the status unless 'ok'."""
  if "modes_covered" in summary:
    strict = (f" ({summary['modes_covered_20']} with ≥ 20)" if "modes_covered_20" in summary
              else "")
    quality = (f"{summary['modes_covered']}/{summary['num_modes']} modes{strict}, "
               f"{100 * summary['high_quality']:.1f}% high-quality")
  else:
    quality = f"MMD² {summary['mmd2']:.1e} to held-out data" if "mmd2" in summary else ""
  tail = "" if status == Status.OK else f" ({status})" if quality else status
  return f"{dataset}, step {summary['steps_done']}: {quality}{tail}"
