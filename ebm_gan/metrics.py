"""Sample-quality metrics for the 2-D mixtures.

A generated sample is **high-quality** if it lies within 3σ of its nearest
mode (σ the component standard deviation); a mode is **covered** if at least
``min_count`` high-quality samples are nearest to it (the PacGAN/VEEGAN/MEG
protocol).
"""

from __future__ import annotations

import numpy as np


def mode_assignment(x: np.ndarray, modes: np.ndarray, std: float, n_std: float = 3.0):
  """Nearest mode of each sample and whether it lies within ``n_std``·σ of it."""
  x = np.asarray(x, np.float64)
  d2 = ((x[:, None, :] - modes[None, :, :]) ** 2).sum(-1)
  nearest = d2.argmin(1)
  within = np.sqrt(d2[np.arange(len(x)), nearest]) <= n_std * std
  return nearest, within


def mode_metrics(x: np.ndarray, modes: np.ndarray, std: float, min_count: int = 20,
                 n_std: float = 3.0) -> dict:
  """Modes covered, high-quality fraction and the KL of the mode histogram.

  Returns:
    ``modes_covered``: #{c : #{high-quality samples nearest to c} ≥ min_count};
    ``high_quality``: the fraction of samples within n_std·σ of their nearest mode;
    ``mode_kl``: KL(ĥ ‖ uniform) of the histogram ĥ of high-quality samples over
    modes (0 for perfectly balanced modes; ∞-free: empty modes contribute 0).
  """
  nearest, within = mode_assignment(x, modes, std, n_std)
  counts = np.bincount(nearest[within], minlength=len(modes))
  total = counts.sum()
  if total:
    h = counts / total
    nz = h > 0
    kl = float(np.sum(h[nz] * np.log(h[nz] * len(modes))))
  else:
    kl = float("nan")
  return {"modes_covered": int((counts >= min_count).sum()), "num_modes": int(len(modes)),
          "high_quality": float(within.mean()), "mode_kl": kl}
