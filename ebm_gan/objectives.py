"""The seed's objectives (docs/theory.md §1–6) and GAN losses, as pure jittable functions.

Sign convention: U is a **log-unnormalised density** (q_m(x) = exp U_m(x) / Z_m;
higher U = more probable; a physicist's energy is −U). The L-objectives are
*maximised*; the GAN losses are *minimised* by the player they belong to.

Expectations are sample means, or exact sums Σ_x w(x) v(x) when weights w are
passed (finite domains, where every identity here is checkable exactly).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ebm_gan.errors import InvalidArgumentError, check_positive


def expectation(values: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """E[v]: the sample mean, or Σ_i w_i v_i for probability weights w."""
  return jnp.mean(values) if weights is None else jnp.sum(weights * values)


def l1(u_data, u_gen, data_weights=None, gen_weights=None):
  """L1(m, f) = E_p[U_m(x)] − E_{q_f}[U_m(x)] (docs/theory.md (2.1); maximised over m).

  Its m-gradient is the maximum-likelihood gradient (1.1) with q_m replaced by q_f.
  """
  return expectation(u_data, data_weights) - expectation(u_gen, gen_weights)


def l2(u_gen, entropy, log_z=0.0, gen_weights=None):
  """L2(m, f) = −KL(q_f ‖ q_m) = E_{q_f}[U_m] + H(q_f) − log Z_m (docs/theory.md (2.2); max over f).

  ``log_z`` defaults to 0: it does not depend on f, so the f-gradient is exact.
  """
  return expectation(u_gen, gen_weights) + entropy - log_z


def l3(u_data, u_gen, entropy, data_weights=None, gen_weights=None):
  """L3(m, f) = E_p[U_m] − E_{q_f}[U_m] + E_{q_f}[log q_f] = L1 − H(q_f) (docs/theory.md (3.1)).

  ∇_m L3 = ∇_m L1 and ∇_f L3 = −∇_f L2; training is max_m min_f L3.
  """
  return l1(u_data, u_gen, data_weights, gen_weights) - entropy


def l4(u_data, entropy, log_z=0.0, data_weights=None):
  """L4 = L1 + L2 = E_p[U_m] + H(q_f) − log Z_m (docs/theory.md (5.1)).

  E_{q_f}[U_m] cancels, so ∇_m L4 does not depend on f: the players decouple
  (the seed's reason to reject it as a minimax objective).
  """
  return expectation(u_data, data_weights) + entropy - log_z


def l5(log_q_f_on_model, u_model, log_z, model_weights=None):
  """L5 = −KL(q_m ‖ q_f) = E_{q_m}[log q_f] − E_{q_m}[U_m] + log Z_m (docs/theory.md (5.2)).

  Needs samples of (or weights for) q_m — the very thing the generator avoids.
  """
  return (expectation(log_q_f_on_model, model_weights)
          - expectation(u_model, model_weights) + log_z)


def vanilla_gan_value(d_data, d_gen, data_weights=None, gen_weights=None):
  """V(D, G) = E_p[log D(x)] + E_{q_G}[log(1 − D(x))] (docs/theory.md (6.1)), D given as probabilities."""
  return (expectation(jnp.log(d_data), data_weights)
          + expectation(jnp.log1p(-d_gen), gen_weights))


def gan_cross_entropy_value(p, q, d):
  """The cross-entropy form of V on a finite domain (docs/theory.md (6.2)), exactly equal to V.

  .. math::  V = Σ_x w(x) Σ_{k∈\\{0,1\\}} c(k|x) \\log g(k|x, D),
             w = p + q,  c(1|x) = p/w,  g(1|x, D) = D(x).

  Args: p, q: probability vectors of data and generator; d: D(x) ∈ (0, 1).
  """
  w = p + q
  c1 = p / w
  return jnp.sum(w * (c1 * jnp.log(d) + (1.0 - c1) * jnp.log1p(-d)))


# ----------------------------------------------------------------------------
# GAN losses on logits (discriminator output l(x) ∈ ℝ, D = σ(l)).


class GANLoss(NamedTuple):
  """A pair of losses on logits: ``discriminator(real, fake, smoothing)``, ``generator(fake)``."""
  discriminator: Callable[..., jax.Array]
  generator: Callable[[jax.Array], jax.Array]


def _bce_real(real, smoothing):
  # −[(1−s) log σ(l) + s log(1 − σ(l))] with log σ(l) = −softplus(−l).
  return jnp.mean((1.0 - smoothing) * jax.nn.softplus(-real) + smoothing * jax.nn.softplus(real))


def minimax_discriminator_loss(real, fake, smoothing=0.0):
  """−E_p[log D] − E_q[log(1 − D)], D = σ(l); one-sided smoothing s: target 1 − s for real."""
  return _bce_real(real, smoothing) + jnp.mean(jax.nn.softplus(fake))


def minimax_generator_loss(fake):
  """E_q[log(1 − D(G(z)))] = −E[softplus(l)] (saturates when D rejects fakes)."""
  return -jnp.mean(jax.nn.softplus(fake))


def non_saturating_generator_loss(fake):
  """−E_q[log D(G(z))] = E[softplus(−l)] (Goodfellow et al. 2014's practical variant)."""
  return jnp.mean(jax.nn.softplus(-fake))


def wasserstein_discriminator_loss(real, fake, smoothing=0.0):
  """−(E_p[l] − E_q[l]): the critic maximises the Kantorovich–Rubinstein gap. No smoothing."""
  del smoothing
  return jnp.mean(fake) - jnp.mean(real)


def wasserstein_generator_loss(fake):
  """−E_q[l]."""
  return -jnp.mean(fake)


def hinge_discriminator_loss(real, fake, smoothing=0.0):
  """E_p[max(0, 1 − l)] + E_q[max(0, 1 + l)]. No smoothing."""
  del smoothing
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def least_squares_discriminator_loss(real, fake, smoothing=0.0):
  """½E_p[(l − (1 − s))²] + ½E_q[l²] (LSGAN with targets 1 − s and 0)."""
  return 0.5 * jnp.mean((real - (1.0 - smoothing)) ** 2) + 0.5 * jnp.mean(fake ** 2)


def least_squares_generator_loss(fake):
  """½E_q[(l − 1)²]."""
  return 0.5 * jnp.mean((fake - 1.0) ** 2)


# The GAN losses by name (docs/theory.md §6).
GAN_LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(minimax_discriminator_loss, minimax_generator_loss),
    "non_saturating": GANLoss(minimax_discriminator_loss, non_saturating_generator_loss),
    "wasserstein": GANLoss(wasserstein_discriminator_loss, wasserstein_generator_loss),
    "hinge": GANLoss(hinge_discriminator_loss, wasserstein_generator_loss),
    "least_squares": GANLoss(least_squares_discriminator_loss, least_squares_generator_loss),
}


# ----------------------------------------------------------------------------
# Gradient penalties. A penalty is ``penalty(fn, x_data, x_gen, key) -> scalar``
# where fn maps a batch x[B, ...] to per-sample scalars (U or a logit).


def _input_grad_sq_norm(fn, x):
  """‖∇_x fn(x)_i‖² per sample (fn acts sample-wise, so grad of the sum suffices)."""
  g = jax.grad(lambda y: jnp.sum(fn(y)))(x)
  return jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1)


def height_penalty(u_data: jax.Array) -> jax.Array:
  """E_p[U_m(x)²] over the data batch, the energy's height penalty (docs/theory.md (6.11)).

  L1 = E_p[U] − E_q[U] does not change when U_m is raised by a constant on one mode's
  region while q_f puts the data's mass there, so the modes' log-heights (q_m's mode
  weights) drift freely; α·E_p[U²] pulls every data point's U towards 0, hence the heights
  towards each other. It also fixes U's free additive constant (E_p[U] ≈ 0).
  """
  return jnp.mean(jnp.square(u_data))


@dataclasses.dataclass(frozen=True)
class ZeroCentredPenalty:
  """(γ/2)·E[‖∇_x U(x)‖²] on the data (R1, the score penalty; Mescheder et al. 2018) or on
  the generator's samples (R2), docs/theory.md (6.6)–(6.7).

  A value: two penalties with the same settings are equal, so games holding them are too.
  """
  gamma: float
  on: str = "data"  # 'data' (R1) | 'samples' (R2)

  def __post_init__(self):
    check_positive(self.gamma, "gamma")
    if self.on not in ("data", "samples"):
      raise InvalidArgumentError(f"on={self.on!r}; allowed: 'data' (R1), 'samples' (R2).")

  def __call__(self, fn, x_data, x_gen, key):
    del key
    x = x_data if self.on == "data" else x_gen
    return 0.5 * self.gamma * jnp.mean(_input_grad_sq_norm(fn, x))


@dataclasses.dataclass(frozen=True)
class WGANGPPenalty:
  """WGAN-GP: λ·E_x̂[(‖∇_x U(x̂)‖ − 1)²], x̂ = εx_data + (1−ε)x_gen, ε ~ U(0,1) per sample."""
  lam: float

  def __post_init__(self):
    check_positive(self.lam, "lam")

  def __call__(self, fn, x_data, x_gen, key):
    eps = jax.random.uniform(key, (x_data.shape[0],) + (1,) * (x_data.ndim - 1))
    x_hat = eps * x_data + (1.0 - eps) * jax.lax.stop_gradient(x_gen)
    return self.lam * jnp.mean((jnp.sqrt(_input_grad_sq_norm(fn, x_hat) + 1e-12) - 1.0) ** 2)


def score_penalty(gamma: float) -> ZeroCentredPenalty:
  """R1 with weight γ, on the data: (γ/2)·E_p[‖∇_x U‖²] (docs/theory.md (6.6))."""
  return ZeroCentredPenalty(gamma, "data")


def r2_penalty(gamma: float) -> ZeroCentredPenalty:
  """R2 with weight γ, on the samples: (γ/2)·E_q[‖∇_x U‖²] (docs/theory.md (6.7))."""
  return ZeroCentredPenalty(gamma, "samples")


def wgan_gp_penalty(lam: float) -> WGANGPPenalty:
  """WGAN-GP with weight λ: :class:`WGANGPPenalty` (docs/theory.md (6.8))."""
  return WGANGPPenalty(lam)


# Penalty factories by name: ``PENALTIES[name](weight)``.
PENALTIES: dict[str, Callable[[float], Callable]] = {
    "score": score_penalty, "r1": score_penalty, "r2": r2_penalty, "wgan_gp": wgan_gp_penalty}
