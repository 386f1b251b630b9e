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
         step_size: float, *, has_aux: bool = False):
  """``num_steps`` MALA transitions of every chain of ``z0[B, k]`` targeting π (docs/theory.md (11.2)).

  The proposal is z' = z + ε∇log π(z) + √(2ε) ξ, accepted with probability
  min(1, π(z') k(z | z') / (π(z) k(z' | z))); a non-finite ratio is a rejection.

  Args:
    log_density: ``z[B, k] -> log π(z)[B]``, rows independent (e.g. :func:`latent_log_density`);
      with ``has_aux``, ``z -> (log π(z)[B], aux)``, aux a by-product of each row kept along
      the chain (e.g. G(z), which the noisy estimator averages).
    z0: the chains' starting points.
    key: PRNG key.
    num_steps: transitions per chain (a Python int; 0 returns ``z0``).
    step_size: ε > 0, the Langevin step (a number, or a traced scalar).
    has_aux: whether ``log_density`` also returns aux.

  Returns:
    ``(z, acceptance)``: the chains after ``num_steps`` transitions, and the mean
    acceptance probability over chains and steps; with ``has_aux``, also the aux of every
    chain's state after each transition, stacked [num_steps, ...].
  """
  if not isinstance(step_size, jax.Array):  # a traced ε (e.g. from a learned σ) is the caller's
    check_positive(step_size, "step_size")
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
    raise InvalidArgumentError(f"num_steps={num_steps!r} is not allowed; expected an integer >= 0.")
  with_aux = log_density if has_aux else lambda z: (log_density(z), ())

  def summed(z):  # Σ_b log π(z_b) has gradient ∇log π(z_b) in row b: the rows are independent
    log_pi, aux = with_aux(z)
    return jnp.sum(log_pi), (log_pi, aux)
  grad_and_value = jax.grad(summed, has_aux=True)

  def state_at(z):
    grad, (log_pi, aux) = grad_and_value(z)
    return z, log_pi, grad, aux

  def log_kernel(to, frm, grad_frm):  # log k(to | frm) up to the constant shared by both ways
    return -jnp.sum((to - frm - step_size * grad_frm) ** 2, axis=-1) / (4.0 * step_size)

  def transition(state, k):
    z, log_pi, grad, _ = state
    k_noise, k_accept = jax.random.split(k)
    new = state_at(z + step_size * grad
                   + jnp.sqrt(2.0 * step_size) * jax.random.normal(k_noise, z.shape, z.dtype))
    log_ratio = (new[1] + log_kernel(z, new[0], new[2]) - log_pi - log_kernel(new[0], z, grad))
    log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
    accept_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jax.random.uniform(k_accept, accept_prob.shape) < accept_prob
    pick = lambda a, b: jnp.where(accept.reshape(accept.shape + (1,) * (a.ndim - 1)), a, b)
    state = jax.tree.map(pick, new, state)
    return state, (accept_prob, state[3])

  if num_steps == 0:
    return (z0, jnp.ones(()), ()) if has_aux else (z0, jnp.ones(()))
  final, (accept_probs, trace) = jax.lax.scan(transition, state_at(z0),
                                              jax.random.split(key, num_steps))
  if has_aux:
    return final[0], jnp.mean(accept_probs), trace
  return final[0], jnp.mean(accept_probs)


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
