"""Gaussian players with closed forms: the affine generator and the quadratic energy.

With these two, q_f and q_m are Gaussians, so entropies, KL divergences and the
game's equilibrium are known exactly (docs/theory.md §4 and §3): the fixtures
the estimators and the game are tested against.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class AffineGenerator(nn.Module):
  """G_f(z) = A z + b, the linear-Gaussian generator: q_f = N(b, A Aᵀ) for z ~ N(0, I).

  Its entropy is ½ log det(2πe A Aᵀ) (data_dim = latent_dim), the closed form
  that entropy estimators and Gaussian games are tested against.
  """
  data_dim: int
  latent_dim: int
  init_scale: float = 1.0

  @nn.compact
  def __call__(self, z):
    a = self.param("A", lambda k, s: self.init_scale * jnp.eye(*s), (self.data_dim, self.latent_dim))
    b = self.param("b", nn.initializers.zeros, (self.data_dim,))
    return z @ a.T + b


class QuadraticEnergy(nn.Module):
  """U(x) = −½ (x − μ)ᵀ P (x − μ), P = L Lᵀ (L lower-triangular): a Gaussian's log density up to Z.

  q_m = N(μ, P⁻¹), so a game with this energy has a closed-form equilibrium.
  """
  data_dim: int

  @nn.compact
  def __call__(self, x):
    d = self.data_dim
    mu = self.param("mu", nn.initializers.zeros, (d,))
    l = self.param("L", lambda k, s: jnp.eye(*s), (d, d))
    l = jnp.tril(l)
    r = (x.reshape(x.shape[0], -1) - mu) @ l
    return -0.5 * jnp.sum(r * r, axis=1)
