"""The Kozachenko–Leonenko k-nearest-neighbour entropy estimator (docs/theory.md §4).

A nonparametric estimate of H(q_f) from the batch of generated samples alone,
differentiable in the samples, so in the generator's parameters.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from ebm_gan.entropy.base import PushForward
from ebm_gan.errors import InvalidArgumentError, check_positive


def unit_ball_log_volume(d: int) -> float:
  """log V_d = (d/2) log π − log Γ(d/2 + 1), the log-volume of the unit d-ball."""
  return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def kth_nearest(dist2: jax.Array, k: int) -> jax.Array:
  """The index of each row's k-th smallest entry of dist2[N, N], by k passes of argmin, each
  masking the previous minimum: O(kN²), where ``lax.top_k`` sorts each row (on the CPU it is
  the slower by far for k > 1: ``benchmarks/entropy_gradients.py`` times both settings)."""
  rows = jnp.arange(dist2.shape[0])
  for _ in range(k - 1):
    dist2 = dist2.at[rows, jnp.argmin(dist2, axis=1)].set(jnp.inf)
  return jnp.argmin(dist2, axis=1)


def kozachenko_leonenko(x: jax.Array, k: int = 1, eps: float = 1e-12) -> jax.Array:
  """The Kozachenko–Leonenko k-nearest-neighbour entropy estimate of samples x[N, d].

  .. math::  Ĥ = ψ(N) − ψ(k) + \\log V_d + \\frac{d}{N} Σ_i \\log ε_{i,k}

  with ε_{i,k} the distance from x_i to its k-th nearest neighbour among the
  others and V_d the volume of the unit d-ball. Consistent as N → ∞ and
  differentiable in the samples (so in the generator's parameters).

  The neighbours are found on the Gram-matrix distances |x_i|² + |x_j|² − 2x_i·x_j
  (one matmul), but ε is recomputed as |x_i − x_j| for the chosen pair: the Gram
  form cancels catastrophically for close pairs in float32, and since ∂ log ε/∂x
  is 1/ε, that rounding would otherwise dominate the gradient.
  """
  n = x.shape[0]
  x = x.reshape(n, -1)
  d = x.shape[1]
  xs = jax.lax.stop_gradient(x)
  sq = jnp.sum(xs * xs, axis=1)
  dist2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, sq[:, None] + sq[None, :] - 2.0 * xs @ xs.T)
  neighbour = kth_nearest(dist2, k)
  log_eps = 0.5 * jnp.log(jnp.sum((x - x[neighbour]) ** 2, axis=1) + eps)
  return (digamma(float(n)) - digamma(float(k)) + unit_ball_log_volume(d)
          + d * jnp.mean(log_eps))


@dataclasses.dataclass(frozen=True)
class KNN(PushForward):
  """Kozachenko–Leonenko estimate of H(q_f) on the batch of generated samples.

  Attributes:
    k: which neighbour (k ≥ 1; larger k lowers variance, raises bias).
  """
  k: int = 1

  def __post_init__(self):
    check_positive(self.k, "k", integer=True)

  def entropy(self, generator, params, z, x, key):
    return kozachenko_leonenko(x, self.k), {}


def knn_entropy(x, k: int = 1) -> float:
  """The Kozachenko–Leonenko estimate (4.4) of samples x[N, ...] on the host, for evaluation.

  The same estimator as :func:`kozachenko_leonenko`, in float64 with exact neighbours from a
  k-d tree, so N can be large (10⁴–10⁶ samples in 2-D) at O(N log N); not differentiable.
  """
  from scipy.spatial import cKDTree  # pylint: disable=g-import-not-at-top
  from scipy.special import digamma as digamma_np  # pylint: disable=g-import-not-at-top
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  n, d = x.shape
  if not k < n:
    raise InvalidArgumentError(f"k={k!r} is not allowed with {n} samples; expected k < {n}.")
  eps = cKDTree(x).query(x, k=k + 1)[0][:, k]
  log_eps = 0.5 * np.log(eps ** 2 + 1e-12)
  return float(digamma_np(n) - digamma_np(k) + unit_ball_log_volume(d) + d * np.mean(log_eps))
