"""Sampling the energy model q_m through the generator: MALA in latent space (docs/theory.md §11).

The generator q_f only approximates q_m ∝ exp U_m. MEG (Kumar et al. 2019) corrects it
by Markov chain Monte Carlo in the generator's latent space: with z ~ N(0, I) and
x = G(z), the density

    π(z) ∝ exp( U_m(G(z)) − ½‖z‖² )

pushed through G equals q_m reweighted by the generator's own density (exactly q_m
when G is invertible with a constant Jacobian; in general a better sample of q_m than
G(z) alone, because the chain moves z towards where U_m is high). The chains are the
Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996):

    z' = z + ε ∇log π(z) + √(2ε) ξ,   ξ ~ N(0, I),
    accepted with probability min(1, π(z') k(z | z') / (π(z) k(z' | z))),
    k(b | a) = N(b; a + ε ∇log π(a), 2ε I),

which leaves π invariant for every ε > 0; every chain (row of ``z``) moves and
accepts independently.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ebm_gan.errors import InvalidArgumentError, check_positive

LogDensity = Callable[[jax.Array], jax.Array]  # z[B, k] -> log π(z)[B] (up to a constant)


def latent_log_density(energy_fn: Callable[[jax.Array], jax.Array],
                       generator_fn: Callable[[jax.Array], jax.Array]) -> LogDensity:
  """log π(z) = U_m(G(z)) − ½‖z‖² per row of z[B, k] (docs/theory.md (11.1))."""
  def log_density(z):
    return energy_fn(generator_fn(z)) - 0.5 * jnp.sum(z * z, axis=-1)
  return log_density


def mala(log_density: LogDensity, z0: jax.Array, key: jax.Array, num_steps: int,
         step_size: float) -> tuple[jax.Array, jax.Array]:
  """``num_steps`` MALA transitions of every chain of ``z0[B, k]`` targeting π (docs/theory.md (11.2)).

  Args:
    log_density: ``z[B, k] -> log π(z)[B]``, rows independent (e.g. :func:`latent_log_density`).
    z0: the chains' starting points.
    key: PRNG key.
    num_steps: transitions per chain (a Python int; 0 returns ``z0``).
    step_size: ε > 0, the Langevin step.

  Returns:
    ``(z, acceptance)``: the chains after ``num_steps`` transitions, and the mean
    acceptance probability over chains and steps.
  """
  check_positive(step_size, "step_size")
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
    raise InvalidArgumentError(f"num_steps={num_steps!r} is not allowed; expected an integer >= 0.")
  value_and_grad = jax.value_and_grad(lambda z: jnp.sum(log_density(z)))

  def log_pi_and_grad(z):
    # Σ_b log π(z_b) has gradient ∇log π(z_b) in row b, since the rows are independent.
    return log_density(z), value_and_grad(z)[1]

  def log_kernel(to, frm, grad_frm):  # log k(to | frm) up to the constant shared by both ways
    return -jnp.sum((to - frm - step_size * grad_frm) ** 2, axis=-1) / (4.0 * step_size)

  def transition(carry, k):
    z, log_pi, grad = carry
    k_noise, k_accept = jax.random.split(k)
    proposal = (z + step_size * grad
                + jnp.sqrt(2.0 * step_size) * jax.random.normal(k_noise, z.shape, z.dtype))
    log_pi_new, grad_new = log_pi_and_grad(proposal)
    log_ratio = (log_pi_new + log_kernel(z, proposal, grad_new)
                 - log_pi - log_kernel(proposal, z, grad))
    log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
    accept_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jax.random.uniform(k_accept, accept_prob.shape) < accept_prob
    pick = lambda new, old: jnp.where(accept.reshape(accept.shape + (1,) * (new.ndim - 1)),
                                      new, old)
    return (pick(proposal, z), pick(log_pi_new, log_pi), pick(grad_new, grad)), accept_prob

  if num_steps == 0:
    return z0, jnp.ones(())
  (z, _, _), accept_probs = jax.lax.scan(transition, (z0, *log_pi_and_grad(z0)),
                                         jax.random.split(key, num_steps))
  return z, jnp.mean(accept_probs)


def sample_energy_model(energy_fn, generator_fn, latent_dim: int, key: jax.Array, n: int,
                        num_steps: int, step_size: float) -> tuple[jax.Array, jax.Array]:
  """n samples of q_m by latent MALA started from the generator's prior (docs/theory.md §11).

  Draws z_0 ~ N(0, I), runs :func:`mala` on π(z) ∝ exp(U_m(G(z)) − ½‖z‖²) and
  returns ``(G(z_T)[n, ...], acceptance)``.
  """
  k_init, k_chain = jax.random.split(key)
  z0 = jax.random.normal(k_init, (n, latent_dim))
  z, acceptance = mala(latent_log_density(energy_fn, generator_fn), z0, k_chain, num_steps,
                       step_size)
  return generator_fn(z), acceptance
