"""The change-of-variables entropy of an injective generator (docs/theory.md (4.20)–(4.21)).

If G_f: ℝ^k → ℝ^D is injective (k ≤ D), q_f lives on the k-dimensional image of G_f and its
density there is the latent density divided by the volume change, so

.. math::

  H(q_f) = H(N(0, I_k)) + E_z\\big[½ \\log\\det(J_zᵀ J_z)\\big],\\qquad J_z = ∂G_f/∂z ∈ ℝ^{D×k}

(for k = D: log|det J_z|, the differential entropy on ℝ^D; for k < D the entropy relative to
the k-dimensional volume on the image: Gemici et al. 2016, Brehmer & Cranmer 2020). This is
the flow estimator (4.3) for ANY generator, an MLP included: the Jacobian comes from k
forward-mode passes, and the estimate and its reparameterised gradient are unbiased while G_f
is injective. Unlike estimators that read the batch (kNN, SSGE) it sees how thin the generator
draws every sample's neighbourhood, the bridges between modes included. Where G_f folds
(several z with one x) the formula over-counts: it is then an upper bound on H, since
q_f(x) = Σ_{z: G(z)=x} N(z)/|det J_z| ≥ each term.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from ebm_gan.entropy.base import PushForward


def log_volume_change(generator, variables, z: jax.Array) -> jax.Array:
  """½ log det(J_zᵀ J_z) (= log|det J_z| when square) per latent z[B, k], J_z = ∂G/∂z."""
  def g(zi):
    return generator.apply(variables, zi[None])[0].reshape(-1)
  jac = jax.vmap(jax.jacfwd(g))(z)                      # [B, D, k]
  if jac.shape[1] == jac.shape[2]:
    return jnp.linalg.slogdet(jac)[1]
  return 0.5 * jnp.linalg.slogdet(jnp.swapaxes(jac, 1, 2) @ jac)[1]


@dataclasses.dataclass(frozen=True)
class JacobianEntropy(PushForward):
  """Ĥ = ½ k log(2πe) + (1/B) Σ_i ½ log det(J_iᵀ J_i): exact for an injective generator.

  Needs latent_dim ≤ the data's dimension; its cost is k forward-mode passes of the generator
  per sample (cheap for the 2-D toys' k = 2).
  """

  def entropy(self, generator, params, z, x, key):
    k = z.shape[-1]
    log_det = log_volume_change(generator, params["generator"], z)
    value = 0.5 * k * math.log(2 * math.pi * math.e) + jnp.mean(log_det)
    return value, {}
