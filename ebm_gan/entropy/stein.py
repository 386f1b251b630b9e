"""The spectral Stein gradient estimator (SSGE; Shi, Sun & Zhu 2018; docs/theory.md (4.13)–(4.15)).

For samples x_1..x_M of an implicit q_f, Stein's identity E_q[∇_x k(x, y) + k(x, y) ∇_x log q(x)]
= 0 (a kernel k vanishing at infinity) lets one regress the score s = ∇ log q on the leading
eigenfunctions of k under q. The Nyström estimates of those eigenfunctions on the sample, with
K = [k(x_n, x_m)] = U Λ Uᵀ, give the score at the sample points in closed form:

.. math::

  ŝ(x_n) = −\\big(U_J Λ_J^{-1} U_Jᵀ\\, G\\big)_n,\\qquad
  G_m = Σ_n ∇_{x_n} k(x_n, x_m) = \\frac{1}{h^2} Σ_n (x_m − x_n)\\, k(x_n, x_m),

the J leading eigenpairs only (a truncated inverse of K). No extra player, no noise: the
generator's entropy gradient is the surrogate (4.6) with this ŝ. The kernel is the RBF
k(x, y) = exp(−‖x − y‖²/2h²) with h the median distance between samples (the paper's
choice) or the median distance to each sample's nearest neighbour, times ``bandwidth_scale``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ebm_gan.entropy.base import PushForward, score_surrogate
from ebm_gan.entropy.knn import kozachenko_leonenko
from ebm_gan.errors import InvalidArgumentError, check_positive

BANDWIDTHS = ("median", "neighbour")


def _squared_distances(x: jax.Array) -> jax.Array:
  sq = jnp.sum(x * x, axis=1)
  return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def rbf_bandwidth(x: jax.Array, rule: str = "median") -> jax.Array:
  """h of the RBF kernel from samples x[M, d]: the median distance between distinct samples
  (``'median'``), or the median over samples of the distance to their nearest neighbour
  (``'neighbour'``: a local scale, for sharp multimodal q)."""
  m = x.shape[0]
  d2 = _squared_distances(x)
  if rule == "median":
    return jnp.sqrt(jnp.median(d2[jnp.triu_indices(m, 1)]))
  nearest = jnp.min(jnp.where(jnp.eye(m, dtype=bool), jnp.inf, d2), axis=1)
  return jnp.sqrt(jnp.median(nearest))


def spectral_stein_score(x: jax.Array, bandwidth: jax.Array, eigen_ratio: float = 0.99,
                         num_eigen: int = 0) -> jax.Array:
  """SSGE's score estimate ŝ[M, d] ≈ ∇ log q(x_n) at the samples x[M, d] (module docstring).

  Args:
    x: the samples (treated as constants).
    bandwidth: h of the RBF kernel.
    eigen_ratio: keep the leading eigenvalues that hold this fraction of K's trace (the
      paper's rule r); ignored when ``num_eigen`` > 0.
    num_eigen: keep exactly this many leading eigenpairs J (0: by ``eigen_ratio``).
  """
  x = jax.lax.stop_gradient(x)
  kernel = jnp.exp(-_squared_distances(x) / (2.0 * bandwidth ** 2))
  col = jnp.sum(kernel, axis=0)
  g = (x * col[:, None] - kernel @ x) / bandwidth ** 2          # G_m, [M, d]
  lam, u = jnp.linalg.eigh(kernel)                             # ascending
  lam, u = lam[::-1], u[:, ::-1]
  rank = jnp.arange(lam.shape[0])
  if num_eigen > 0:
    keep = rank < num_eigen
  else:
    before = jnp.cumsum(lam) - lam                             # the trace held by the larger ones
    keep = before < eigen_ratio * jnp.sum(lam)
  keep = keep & (lam > 1e-6 * lam[0])
  inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
  return -(u * inv) @ (u.T @ g)


@dataclasses.dataclass(frozen=True)
class SpectralStein(PushForward):
  """H(q_f)'s gradient from SSGE's score on the batch; the value is Kozachenko–Leonenko's (4.4).

  Attributes:
    bandwidth: ``'median'`` (the paper's) or ``'neighbour'`` (:func:`rbf_bandwidth`).
    bandwidth_scale: a factor on that bandwidth.
    eigen_ratio: the fraction of K's trace the kept eigenpairs hold (0 < r ≤ 1).
    num_eigen: a fixed number of eigenpairs instead (0: by ``eigen_ratio``).
  """
  bandwidth: str = "median"
  bandwidth_scale: float = 1.0
  eigen_ratio: float = 0.99
  num_eigen: int = 0

  def __post_init__(self):
    if self.bandwidth not in BANDWIDTHS:
      raise InvalidArgumentError(f"bandwidth={self.bandwidth!r} is not allowed; "
                                 f"allowed: {', '.join(BANDWIDTHS)}.")
    check_positive(self.bandwidth_scale, "bandwidth_scale")
    if (isinstance(self.eigen_ratio, bool) or not isinstance(self.eigen_ratio, (int, float))
        or not 0 < self.eigen_ratio <= 1):
      raise InvalidArgumentError(f"eigen_ratio={self.eigen_ratio!r} is not allowed; "
                                 "expected a number in (0, 1].")
    if isinstance(self.num_eigen, bool) or not isinstance(self.num_eigen, int) or self.num_eigen < 0:
      raise InvalidArgumentError(f"num_eigen={self.num_eigen!r} is not allowed; expected an "
                                 "integer >= 0 (0: by eigen_ratio).")

  def entropy(self, generator, params, z, x, key):
    flat = jax.lax.stop_gradient(x.reshape(x.shape[0], -1))
    h = self.bandwidth_scale * rbf_bandwidth(flat, self.bandwidth)
    score = spectral_stein_score(flat, h, self.eigen_ratio, self.num_eigen)
    return score_surrogate(kozachenko_leonenko(flat), score, x), {"ssge_bandwidth": h}
