"""The Fréchet distance between Gaussians fitted to two sets of features (docs/theory.md §10).

For features a_i ∈ ℝ^d (i ≤ m) and b_j ∈ ℝ^d (j ≤ n), :func:`gaussian_moments` fits the mean
and unbiased covariance of each set, and :func:`frechet_distance` returns

    FD = ‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^{1/2} C₂ C₁^{1/2})^{1/2})        (docs/theory.md (10.4))

the squared 2-Wasserstein distance between N(μ₁, C₁) and N(μ₂, C₂): FID when the features are
an Inception network's, "FD-digits" here, where they are the digit classifier's
(:func:`ebm_gan.classifier.features`, :func:`ebm_gan.modes.channel_features`). The module is
pure numpy in float64; it reads no files.
"""

from __future__ import annotations

import numpy as np

from ebm_gan.errors import InvalidArgumentError


def gaussian_moments(features) -> tuple[np.ndarray, np.ndarray]:
  """(mean[d], cov[d, d]) of features[n, d] in float64, the covariance unbiased (n − 1).

  μ̂ = (1/n) Σ_i a_i,  Ĉ = (1/(n − 1)) Σ_i (a_i − μ̂)(a_i − μ̂)ᵀ: the Gaussian that
  :func:`frechet_distance` compares (docs/theory.md (10.4)). Needs n ≥ 2 finite rows.
  """
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or not np.all(np.isfinite(x)):
    raise InvalidArgumentError(f"features of shape {x.shape} are not allowed; expected finite "
                               "features[n, d] with n ≥ 2 rows and d ≥ 1.")
  mean = x.mean(axis=0)
  centred = x - mean
  return mean, centred.T @ centred / (x.shape[0] - 1)


def psd_sqrt(cov) -> np.ndarray:
  """The symmetric PSD square root S (S S = C) of a symmetric matrix C[d, d].

  C is symmetrised, (C + Cᵀ)/2 = V diag(λ) Vᵀ by ``eigh``, and S = V diag(√max(λ, 0)) Vᵀ:
  rounding's small negative eigenvalues (a rank-deficient C) become 0, never NaN or complex.
  """
  c = np.asarray(cov, np.float64)
  eigenvalues, vectors = np.linalg.eigh((c + c.T) / 2)
  return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def _check_moments(mean1, cov1, mean2, cov2):
  shapes = [np.shape(a) for a in (mean1, cov1, mean2, cov2)]
  d = shapes[0][0] if len(shapes[0]) == 1 else -1
  if shapes != [(d,), (d, d)] * 2:
    raise InvalidArgumentError(f"moments of shapes {shapes} are not allowed; expected "
                               "mean1[d], cov1[d, d], mean2[d], cov2[d, d].")
  if not all(np.all(np.isfinite(a)) for a in (mean1, cov1, mean2, cov2)):
    raise InvalidArgumentError("moments with a NaN or an infinity are not allowed.")


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
  """‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^{1/2} C₂ C₁^{1/2})^{1/2}), a Python float ≥ 0.

  The squared 2-Wasserstein (Fréchet) distance between N(μ₁, C₁) and N(μ₂, C₂)
  (docs/theory.md (10.4)); symmetric, 0 iff the Gaussians are equal. The trace term is
  computed without a non-symmetric matrix square root: with S_k = C_k^{1/2} (:func:`psd_sqrt`),
  C₁^{1/2} C₂ C₁^{1/2} = (S₁S₂)(S₁S₂)ᵀ, so tr (C₁^{1/2} C₂ C₁^{1/2})^{1/2} is the sum of the
  singular values of S₁S₂ (its nuclear norm), which an SVD gives to rounding even where
  C₁ or C₂ is singular. Rounding can leave a tiny negative total; it is returned as 0.

  Args:
    mean1, mean2: means[d]; cov1, cov2: symmetric PSD covariances[d, d] (e.g. from
      :func:`gaussian_moments`).
  """
  moments = [np.asarray(a, np.float64) for a in (mean1, cov1, mean2, cov2)]
  _check_moments(*moments)
  mean1, cov1, mean2, cov2 = moments
  cross = np.linalg.svd(psd_sqrt(cov1) @ psd_sqrt(cov2), compute_uv=False).sum()
  fd = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * cross
  return max(float(fd), 0.0)


def features_distance(features1, features2) -> float:
  """:func:`frechet_distance` of the :func:`gaussian_moments` of features1[m, d] and
  features2[n, d] (docs/theory.md (10.4)): FD-digits when both are digit-classifier features."""
  return frechet_distance(*gaussian_moments(features1), *gaussian_moments(features2))
