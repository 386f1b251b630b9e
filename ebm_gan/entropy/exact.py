"""The exact entropy of an invertible generator (docs/theory.md §4, change of variables)."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from ebm_gan.entropy.base import PushForward
from ebm_gan.models.flows import forward_and_log_det


@dataclasses.dataclass(frozen=True)
class Flow(PushForward):
  """The exact entropy of an invertible generator (change of variables).

  .. math::  Ĥ = ½ d \\log(2πe) + \\frac{1}{B} Σ_i \\log |\\det ∂G_f/∂z(z_i)|

  since H(q_f) = H(N(0, I_d)) + E_z[log |det ∂G_f/∂z|]. Its gradient is the
  exact ∇_f H in expectation; for the affine generator x = A z + b (log-det
  constant in z) Ĥ = ½ log det(2πe A Aᵀ) with no Monte Carlo error at all.
  Needs :class:`ebm_gan.models.CouplingFlow` or a square
  :class:`ebm_gan.models.AffineGenerator` (see :func:`ebm_gan.models.forward_and_log_det`).
  """

  def entropy(self, generator, params, z, x, key):
    return self.sample_and_entropy(generator, params, z, key)[1]

  def sample_and_entropy(self, generator, params, z, key):
    """``(x, (Ĥ, {}))`` from ONE pass of the flow: x = G_f(z) and its log-determinant."""
    x, log_det = forward_and_log_det(generator, params["generator"], z)
    d = z.shape[-1]
    return x, (0.5 * d * math.log(2 * math.pi * math.e) + jnp.mean(log_det), {})
