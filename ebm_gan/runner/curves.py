"""Training curves: one panel per metric, a smoothed line over a faint raw trace.

Each loss has its own axis (so a small loss is never squashed flat by a large
one); per-player norms of one kind share a panel on a log axis, and the axis
label says so. The smoothing is a bias-corrected exponential moving average
whose span is about 2% of the run (at least 5 steps); the y-range follows the bulk of the raw
values (0.5–99.5 percentiles), so a few spikes do not flatten the curve. A metric logged
under two names is drawn once (:func:`merge_identical`).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from ebm_gan.runner import tables  # noqa: E402

NORM_KINDS = ("grad_norm", "param_norm", "update_norm")
FIRST = ("l3", "l1", "entropy", "entropy_lower_bound", "mi_bound")  # after the players' losses


def ema(values, span: float) -> np.ndarray:
  """Bias-corrected exponential moving average of ``values`` (NaNs skipped and kept)."""
  values = np.asarray(values, np.float64)
  beta = 1.0 - 2.0 / (max(span, 1.0) + 1.0)
  out = np.full_like(values, np.nan)
  num = den = 0.0
  for i, v in enumerate(values):
    if np.isfinite(v):
      num, den = beta * num + v, beta * den + 1.0
      out[i] = num / den
  return out


def panel_of(name: str) -> str:
  """The panel a metric is drawn in: per-player norms of a kind share one; the rest their own."""
  head = name.split("/", 1)[0]
  return head if head in NORM_KINDS else name


def _same(a: np.ndarray, b: np.ndarray) -> bool:
  """Whether two series are one metric: finite at the same steps, and there equal up to
  float32 rounding (relative 1e-5 of the larger magnitude)."""
  finite = np.isfinite(a)
  if a.shape != b.shape or not finite.any() or not np.array_equal(finite, np.isfinite(b)):
    return False
  a, b = a[finite], b[finite]
  return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max()))


def merge_identical(panels: dict[str, dict]) -> dict[str, dict]:
  """Draws a metric logged under two names once: panels of one series whose values are the
  same (:func:`_same`) become one panel, named after both ('mi_bound = mi_dv').

  With the mutual-information estimator (``entropy.name=mi``, ``sigma`` 0) the estimator's
  logged value *is* its Donsker–Varadhan statistic ``mi_dv``, so the two panels were
  duplicates. The numbers decide, not a list of names: no panel is dropped unseen (its name
  stays in the title), and the two are drawn apart whenever they differ (``sigma`` > 0 adds
  a constant to the value).
  """
  out: dict[str, dict] = {}
  for key, curves in panels.items():
    if len(curves) == 1 and key not in NORM_KINDS:
      values = next(iter(curves.values()))
      twin = next((k for k, c in out.items() if len(c) == 1 and k not in NORM_KINDS
                   and _same(next(iter(c.values())), values)), None)
      if twin is not None:
        out[f"{twin} = {key}"] = out.pop(twin)
        continue
    out[key] = curves
  return out


def _order(panel: str):
  panel = panel.split(" = ")[0]  # a merged panel (merge_identical) sorts as its first name
  if panel.startswith("loss_"):
    return (0, panel)
  if panel in FIRST:
    return (1, FIRST.index(panel))
  return (3 if panel in NORM_KINDS else 2, panel)


def _robust_ylim(ax, arrays, log: bool) -> None:
  finite = np.concatenate([a[np.isfinite(a)] for a in arrays] or [np.zeros(0)])
  if log:
    finite = finite[finite > 0]
  if finite.size < 2:
    return
  lo, hi = np.percentile(finite, [0.5, 99.5])
  if log:
    ax.set_ylim(lo / 1.5, hi * 1.5)
  elif hi > lo:
    pad = 0.08 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)


def _draw_panel(ax, steps, curves: dict, span: float, title: str) -> None:
  """One panel: each curve raw (faint) and smoothed, labelled axes, legend beside it."""
  log = title in NORM_KINDS and all(np.nanmin(v) > 0 for v in curves.values()
                                    if np.isfinite(v).any())
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for j, (name, values) in enumerate(curves.items()):
    color = colors[j % len(colors)]
    ax.plot(steps, values, lw=0.5, alpha=0.25, color=color)
    ax.plot(steps, ema(values, span), lw=1.4, color=color,
            label=name.split("/")[-1] if len(curves) > 1 else None)
  if log:
    ax.set_yscale("log")
  _robust_ylim(ax, list(curves.values()), log)
  ax.set_title(title, fontsize=9)
  ax.set_xlabel("step", fontsize=8)
  ax.set_ylabel(title + (" (log scale)" if log else ""), fontsize=8)
  ax.tick_params(labelsize=7)
  if len(curves) > 1:
    ax.legend(fontsize=7, loc="upper right", framealpha=0.7)  # "best" would cost a search


def training_curves(path: str, steps, series: dict) -> None:
  """Saves a PNG of the training curves, one panel per metric (norms grouped per kind; a
  metric logged under two names once, :func:`merge_identical`).

  Args:
    path: the PNG file.
    steps: the steps [T].
    series: metric name -> values [T] (NaN where a row lacks the metric).
  """
  panels: dict[str, dict] = {}
  for name, values in series.items():
    panels.setdefault(panel_of(name), {})[name] = np.asarray(values, np.float64)
  panels = merge_identical(panels)
  names = sorted(panels, key=_order)
  cols = min(4, len(names))
  rows = -(-len(names) // cols)
  span = max(5.0, 0.02 * len(steps))
  # A fixed layout: matplotlib's constrained layout draws the figure twice more (~2 s here).
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows + 0.6), dpi=80,
                           squeeze=False)
  fig.subplots_adjust(left=0.06, right=0.98, bottom=0.5 / (2.8 * rows + 0.6),
                      top=1 - 0.7 / (2.8 * rows + 0.6), wspace=0.32, hspace=0.55)
  for ax, name in zip(axes.ravel(), names):
    _draw_panel(ax, np.asarray(steps), panels[name], span, name)
  for ax in axes.ravel()[len(names):]:
    ax.axis("off")
  fig.suptitle(f"training curves: faint = every logged step, bold = moving average "
               f"(EMA, span {span:.0f} steps)", fontsize=10)
  tables.save_atomically(path, fig.savefig)
  plt.close(fig)
