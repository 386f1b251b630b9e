"""The 'ebm_gan' program's distribution metrics for its summary (ebm_gan.metrics, docs/theory.md §9).

  mmd2               unbiased MMD² (median-heuristic RBF) between eval_samples generator
                     samples and eval_samples held-out data points, drawn with their own key
  kl_generator_data  KL(q_f ‖ p) from the generator samples (kNN entropy), where the
                     dataset has a closed-form log_prob; biased up by the kNN entropy:
                     q_f = p reads +0.027 ± 0.002 on 25gaussians at 2500 samples (mean ±
                     standard error over 300 draws; metrics.generator_kl)
  kl_data_model      KL(p ‖ q_m) of the energy by quadrature: GRID × GRID cells on the
                     picture box ±dataset.scale, Ẑ_m over the plane out to 3× the box and
                     rings beyond while they hold mass (metrics.plane_normaliser,
                     docs/theory.md (9.3)), where the dataset has a log_prob and the game an
                     energy (not for a GAN's logit)
  model_heldout_ll   the energy's mean log q_m on the held-out data (docs/theory.md (9.9)),
                     Ẑ_m as for kl_data_model: every 2-D toy, with a density or not
  model_mass_beyond_grid  the share of Ẑ_m in the outermost ring evaluated, with
                     model_heldout_ll: < 1e-3 once the grid has converged; not small (up to
                     1) when U_m grows outward and q_m is not normalisable, which makes every
                     metric normalised by Ẑ_m void (docs/theory.md (9.3))
  model_near_modes   on the Gaussian mixtures: the mass of q_m within 3σ of a mode, the
  model_mode_factor  worst factor between a mode's share of it and 1/K (docs/theory.md
  model_mass_outside (9.6)-(9.7)), and its mass off the box, where the data never are
  generator_entropy  H(q_f) by Kozachenko-Leonenko (docs/theory.md (4.4)) on
                     evaluation.entropy_samples generator samples (every 2-D toy), whatever
                     estimator trained the generator: what its entropy term was for
  data_entropy       H(p): the midpoint rule (docs/theory.md (9.10)) where the dataset has a
                     log_prob, else Kozachenko-Leonenko on DATA_ENTROPY_SAMPLES data points

For a perfect model (U_m = log p) kl_data_model is 0 up to float32 rounding of log p (−5e-7
on 25gaussians; p's grid mass is 1 to 3e-12) and model_mass_outside is what the midpoint rule
(9.3) finds of p off the box: 7.9e-4 on 25gaussians, whose outer modes lie 3σ inside the box
(p's exact mass there is 1 − (1 − 0.4·Φ(−3))² = 1.08e-3; the box's edge cuts each tail 3σ
out, where cells of side 0.86σ err by O(h²)).
"""

from __future__ import annotations

import jax
import numpy as np

from ebm_gan import metrics
from ebm_gan.entropy.knn import knn_entropy

HELDOUT_STREAM = 2**31 - 2  # the held-out data's key: PRNGKey(seed) folded with this
DATA_ENTROPY_SAMPLES = 100_000  # data points for H(p) of a dataset with no log_prob
GRID = 192  # cells per axis: side 2·scale/192 ≤ 1.1σ of the sharpest toy (8gaussians, σ 0.02)


def _calls_kept(energy, keep: int = metrics.RINGS + 3):
  """``energy`` that keeps its results on the last ``keep`` inputs: kl_data_model,
  model_heldout_ll, model_mass_beyond_grid and the mode masses each evaluate it on the same
  plane grid and rings (metrics.plane_normaliser), which this does once."""
  kept = {}

  def energy_kept(x):
    x = np.asarray(x, np.float32)
    key = (x.shape, x.tobytes())
    if key not in kept:
      if len(kept) >= keep:
        del kept[next(iter(kept))]  # the oldest
      kept[key] = np.asarray(energy(x))
    return kept[key]
  return energy_kept


class DensityMetrics:
  """Held-out data, and the jitted log-density, of one experiment."""

  def __init__(self, exp):
    c, dataset = exp.config, exp.dataset
    key = jax.random.fold_in(jax.random.PRNGKey(c.seed), HELDOUT_STREAM)
    self.heldout = np.asarray(jax.jit(dataset.sample, static_argnums=1)(key, c.eval_samples))
    self.log_prob = jax.jit(dataset.log_prob) if hasattr(dataset, "log_prob") else None
    self.has_energy = exp.game.has_energy
    self.scale = dataset.scale
    self.modes, self.std = getattr(dataset, "modes", None), getattr(dataset, "std", None)
    self._dataset, self._data_entropy = dataset, None

  def data_entropy(self) -> float:
    """H(p) of the dataset (module docstring), computed once."""
    if self._data_entropy is None:
      ds = self._dataset
      if self.log_prob is not None:
        self._data_entropy = metrics.quadrature_entropy(self.log_prob, self.scale, GRID)
      else:
        points = jax.jit(ds.sample, static_argnums=1)(jax.random.PRNGKey(0), DATA_ENTROPY_SAMPLES)
        self._data_entropy = knn_entropy(np.asarray(points))
    return self._data_entropy

  def __call__(self, samples: np.ndarray, energy) -> dict:
    """The metrics of generator ``samples`` and of the energy ``energy(x[k, 2]) -> U[k]``
    (None: the samples' metrics only)."""
    if not np.all(np.isfinite(samples)):
      return {}
    out = {"mmd2": metrics.mmd2(samples, self.heldout)}
    energy = None if energy is None else _calls_kept(energy)
    if self.has_energy and energy is not None:
      out["model_heldout_ll"] = metrics.heldout_log_likelihood(energy, self.heldout, self.scale,
                                                               GRID)
      out["model_mass_beyond_grid"] = metrics.plane_normaliser(energy, self.scale, GRID).beyond
    if self.log_prob is not None:
      out["kl_generator_data"] = metrics.generator_kl(samples, self.log_prob)
      if self.has_energy and energy is not None:
        out["kl_data_model"] = metrics.quadrature_kl(self.log_prob, energy, self.scale, GRID)
        if self.modes is not None:
          out.update(metrics.energy_mode_mass(energy, self.modes, self.std, self.scale, GRID))
    return out
