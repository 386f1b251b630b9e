"""The noise-injected generator x = G_f(z) + σε and its entropy gradient (docs/theory.md §4).

Widening the generator's Dirac with Gaussian noise (the seed's suggestion)
makes q_f(x) = ∫ N(x; G_f(z), σ²I) N(z; 0, I) dz a proper density. Its entropy
gradient needs only the score of q_f: with the reparameterisation x = G_f(z) + σε
and E_{q_f}[∂_f log q_f] = 0,

.. math::

  ∇_f H(q_f) = −E_{z,ε}\\big[(∇_x \\log q_f(x))ᵀ ∂_f x\\big],
  \\qquad ∇_x \\log q_f(x) = E_{z' \\sim p(z'|x)}\\big[(G_f(z') − x)/σ²\\big],

so one needs samples of the posterior p(z | x) ∝ N(z; 0, I) N(x; G_f(z), σ²I)
(VERA, Grathwohl et al. 2021; PresGAN, Dieng et al. 2019). The posterior
samples must be (nearly) independent of the z that produced x, or the estimate
shrinks towards zero. Two samplers:

* ``'importance'``: K proposals z'_j ~ r(z' | x), self-normalised weights
  w_j ∝ N(z'_j; 0, I) N(x; G(z'_j), σ²I) / r(z'_j | x). The proposal is
  ``'learned'`` (an amortised Gaussian r_φ(z|x) = N(μ_φ(x), L_φL_φᵀ), a third
  player fitted by maximum likelihood on the generator's own pairs (z, x), i.e.
  it minimises KL(p(z|x) ‖ r_φ), the mass-covering direction IS needs; the
  latent that produced x joins the normaliser as a defensive candidate, which
  keeps the estimate bounded while r_φ lags and scales it by about 1 − 1/(1 + K·ESS)
  once r_φ fits) or
  ``'local'`` (N(z, (cσ)²I) around the latent that produced x). The same weights
  give log q_f(x) ≈ log mean_j w_j, so the value is an estimate of H too.
* ``'mala'``: a few Metropolis-adjusted Langevin steps on p(z | x) started at
  the latent that produced x (an exact posterior sample, so the chain is
  stationary; its autocorrelation shrinks the gradient). Its value is the lower
  bound H(x | z) = ½ d log(2πeσ²) (the information term is not estimated).

σ is fixed, or learned by the generator player (``learn_sigma``): log σ lives in
the generator's ``'noise'`` collection and gets its gradient through x.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan import sampling
from ebm_gan.entropy.base import score_surrogate
from ebm_gan.errors import InvalidArgumentError, check_positive, lookup
from ebm_gan.models.flows import standard_normal_log_prob
from ebm_gan.models.mlp import ACTIVATIONS

POSTERIORS = ("importance", "mala")
PROPOSALS = ("learned", "local")


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, sigma) -> jax.Array:
  """log N(x; mean, σ²I) over the last axis (x, mean flattened per sample)."""
  d = x.shape[-1]
  return (-0.5 * jnp.sum((x - mean) ** 2, axis=-1) / sigma ** 2
          - d * jnp.log(sigma) - 0.5 * d * math.log(2 * math.pi))


def conditional_entropy(d: int, sigma) -> jax.Array:
  """H(x | z) = ½ d log(2πeσ²) for x = G(z) + σε in d dimensions."""
  return 0.5 * d * (math.log(2 * math.pi * math.e) + 2 * jnp.log(sigma))


def add_noise(generator, params, z, key, sigma):
  """x = G_f(z) + σε, ε ~ N(0, I) (x has the generator's output shape)."""
  g = generator.apply(params["generator"], z)
  return g + sigma * jax.random.normal(key, g.shape, g.dtype)


class GaussianPosterior(nn.Module):
  """r_φ(z | x) = N(z; W x + c + MLP(x), L Lᵀ), L = diag(s) (I + M) shared by all x.

  The affine path alone is exact for a linear-Gaussian generator (whose
  posterior has a mean affine in x and a constant covariance); the MLP (last
  layer zero at init) adds the nonlinear part. M is strictly lower-triangular,
  so L is lower-triangular with diagonal s > 0 and log det L = Σ log s; M acts
  on residuals already divided by s, which keeps its gradient O(1) however
  narrow the posterior. Returns ``(mean[B, k], L[k, k])``; s starts at ``init_scale``.
  """
  latent_dim: int
  hidden: Sequence[int] = (128, 128)
  activation: str = "relu"
  init_scale: float = 1.0

  @nn.compact
  def __call__(self, x):
    k = self.latent_dim
    act = lookup(ACTIVATIONS, self.activation, "activation", "activation")
    x = x.reshape(x.shape[0], -1)
    h = x
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    mean = nn.Dense(k)(x) + nn.Dense(k, kernel_init=nn.initializers.zeros)(h)
    m = self.param("M", nn.initializers.zeros, (k, k))
    log_s = self.param("log_scale", nn.initializers.constant(math.log(self.init_scale)), (k,))
    return mean, jnp.exp(log_s)[:, None] * (jnp.eye(k) + jnp.tril(m, -1))


def gaussian_posterior_log_prob(z, mean, scale_tril):
  """log N(z; mean, L Lᵀ) over the last axis; z[..., B, k], mean[B, k], L lower-triangular."""
  eta = jax.scipy.linalg.solve_triangular(scale_tril, jnp.swapaxes(z - mean, -1, -2),
                                          lower=True)
  return (standard_normal_log_prob(jnp.swapaxes(eta, -1, -2))
          - jnp.sum(jnp.log(jnp.diag(scale_tril))))


@dataclasses.dataclass(frozen=True)
class NoiseInjection:
  """x = G_f(z) + σε with σ fixed or learned by the generator (log σ in its ``'noise'``
  collection, so the generator maximises L2 over σ too; docs/theory.md §4).

  Attributes:
    sigma: σ > 0 (its initial value when learned).
    learn_sigma: whether the generator player learns log σ.
  """
  sigma: float = 0.1
  learn_sigma: bool = False

  def noise_scale(self, params) -> jax.Array:
    """σ: the fixed value, or exp(log σ) from the generator's 'noise' collection."""
    if self.learn_sigma:
      return jnp.exp(params["generator"]["noise"]["log_sigma"])
    return jnp.asarray(self.sigma, jnp.float32)

  def noise_init(self, params) -> dict:
    """``{'generator': ...}`` with a ``log σ`` leaf when σ is learned, else ``{}``."""
    if not self.learn_sigma:
      return {}
    return {"generator": {**params["generator"],
                          "noise": {"log_sigma": jnp.asarray(math.log(self.sigma), jnp.float32)}}}

  def sample(self, generator, params, z, key):
    return add_noise(generator, params, z, key, self.noise_scale(params))


@dataclasses.dataclass(frozen=True)
class NoisyGenerator(NoiseInjection):
  """x = G_f(z) + σε with ∇_f H from posterior samples (module docstring).

  The returned ``h`` has the value of the estimate (importance sampling:
  −mean log q̂(x); MALA: the lower bound H(x|z)) and the gradient of the
  surrogate −(1/B) Σ_i sg(ŝ_i)ᵀ x_i, ŝ_i ≈ ∇_x log q_f(x_i).

  Attributes:
    sigma, learn_sigma: σ and whether it is learned (:class:`NoiseInjection`).
    posterior: ``'importance'`` or ``'mala'``.
    proposal: for importance sampling, ``'learned'`` (a player ``'posterior'``)
      or ``'local'`` (N(z, (proposal_scale·σ)² I)).
    num_samples: K importance proposals per sample.
    proposal_scale: c of the local proposal (the posterior's width is about
      σ / ‖∂G/∂z‖).
    proposal_hidden: the learned proposal's mean-network widths.
    mala_steps: MALA steps per sample.
    mala_step_size: the Langevin step h in units of σ (h = mala_step_size·σ).
  """
  posterior: str = "importance"
  proposal: str = "learned"
  num_samples: int = 16
  proposal_scale: float = 1.0
  proposal_hidden: tuple[int, ...] = (128, 128)
  mala_steps: int = 10
  mala_step_size: float = 1.0

  def __post_init__(self):
    check_positive(self.sigma, "sigma")
    check_positive(self.num_samples, "num_samples", integer=True)
    check_positive(self.proposal_scale, "proposal_scale")
    check_positive(self.mala_steps, "mala_steps", integer=True)
    check_positive(self.mala_step_size, "mala_step_size")
    for key, value, allowed in (("posterior", self.posterior, POSTERIORS),
                                ("proposal", self.proposal, PROPOSALS)):
      if value not in allowed:
        raise InvalidArgumentError(f"{key}={value!r} is not allowed; "
                          f"allowed: {', '.join(allowed)}.")

  @property
  def value_name(self) -> str:
    """'entropy' (importance sampling's −mean log q̂) or 'entropy_lower_bound' (MALA's H(x|z))."""
    return "entropy" if self.posterior == "importance" else "entropy_lower_bound"

  @property
  def players(self) -> tuple[str, ...]:
    learned = self.posterior == "importance" and self.proposal == "learned"
    return ("posterior",) if learned else ()

  def _proposal(self, latent_dim):
    # Starts as wide as the prior: too wide only wastes proposals, too narrow biases IS.
    return GaussianPosterior(latent_dim, self.proposal_hidden)

  def init(self, key, generator, params, z):
    new = self.noise_init(params)
    if self.players:
      x = generator.apply(params["generator"], z)
      new["posterior"] = self._proposal(z.shape[-1]).init(key, x.reshape(x.shape[0], -1))
    return new

  def entropy(self, generator, params, z, x, key):
    x = x.reshape(x.shape[0], -1)
    params_sg, x_sg, z = jax.lax.stop_gradient((params, x, z))
    sigma = self.noise_scale(params_sg)
    if self.posterior == "importance":
      score, h_value, metrics = self._importance(generator, params_sg, z, x_sg, sigma, key)
    else:
      score, metrics = self._mala(generator, params_sg, z, x_sg, sigma, key)
      h_value = conditional_entropy(x.shape[-1], sigma)
    return score_surrogate(h_value, score, x), {**metrics, "sigma": sigma}

  def _importance(self, generator, params, z, x, sigma, key):
    """(ŝ[B, d], −mean log q̂, metrics) by self-normalised importance sampling.

    With the learned proposal, the latent z_0 that produced x (an exact
    posterior sample) joins the normaliser but not the sum:

    .. math::  ŝ = Σ_{j≥1} w_j (G(z_j) − x)/σ² \\,/\\, (w_0 + Σ_{j≥1} w_j).

    While r_φ is poor w_0 dominates and ŝ → 0 (no entropy push) instead of
    (G(z_j) − x)/σ² for a far-away z_j, which fed back through the
    generator's step diverges; once r_φ fits, ŝ is the plain IS estimate
    scaled by 1 − w̄_0 ≈ 1 − 1/(1 + K·ESS). Keeping z_0's own term out keeps
    ŝ free of the noise ε that made x, whose correlation with ∂x/∂σ = ε would
    bias a learned σ upward.
    """
    k = z.shape[-1]
    eta = jax.random.normal(key, (self.num_samples,) + z.shape, z.dtype)
    if self.proposal == "learned":
      mean, tril = self._proposal(k).apply(params["posterior"], x)
      zs = jnp.concatenate([z[None], mean + eta @ tril.T])
      log_r = gaussian_posterior_log_prob(zs, mean, tril)
    else:
      scale = self.proposal_scale * sigma
      zs = z + scale * eta
      log_r = standard_normal_log_prob(eta) - k * jnp.log(scale)
    g = generator.apply(params["generator"], zs.reshape(-1, k)).reshape(*zs.shape[:2], -1)
    log_w = standard_normal_log_prob(zs) + gaussian_log_likelihood(x, g, sigma) - log_r
    w = jax.nn.softmax(log_w, axis=0)                                   # [K(+1), B]
    if self.proposal == "learned":
      w = w.at[0].set(0.0)
    score = jnp.sum(w[..., None] * (g - x), axis=0) / sigma ** 2
    log_q = jax.nn.logsumexp(log_w, axis=0) - math.log(zs.shape[0])
    # The proposals' effective sample size, as a fraction of K.
    ess = (jnp.sum(w, axis=0) ** 2 / jnp.maximum(jnp.sum(w * w, axis=0), 1e-30)
           / self.num_samples)
    return score, -jnp.mean(log_q), {"is_ess": jnp.mean(ess)}

  def _mala(self, generator, params, z, x, sigma, key):
    """(ŝ[B, d], metrics): the score averaged over a MALA chain on p(z | x)
    (:func:`ebm_gan.sampling.mala`, Langevin step ε = h²/2, h = mala_step_size·σ)."""
    h = self.mala_step_size * sigma

    def log_post(zz):  # log p(z, x) per row, and G(z), which the score averages
      g = generator.apply(params["generator"], zz).reshape(x.shape)
      return standard_normal_log_prob(zz) + gaussian_log_likelihood(x, g, sigma), g

    _, acceptance, g = sampling.mala(log_post, z, key, self.mala_steps, 0.5 * h ** 2,
                                     has_aux=True)
    score = jnp.mean(g - x, axis=0) / sigma ** 2
    return score, {"mala_accept": acceptance}

  def losses(self, generator, params, z, x, key):
    if not self.players:
      return {}
    x, z = jax.lax.stop_gradient((x, z))
    mean, tril = self._proposal(z.shape[-1]).apply(params["posterior"], x)
    # The maximum-likelihood fit of r_φ, split so that no part is stiff: the mean by
    # least squares (its minimiser is E[z|x], as the NLL's), L by the NLL given the mean.
    nll = -jnp.mean(gaussian_posterior_log_prob(z, jax.lax.stop_gradient(mean), tril))
    mse = 0.5 * jnp.mean(jnp.sum((z - mean) ** 2, axis=-1))
    return {"posterior": (nll + mse, {"posterior_nll": nll})}
