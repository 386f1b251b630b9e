"""Latent MALA (ebm_gan.sampling, docs/theory.md §11) against closed-form Gaussian targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import sampling
from ebm_gan.errors import InvalidArgumentError

# A 1-D linear generator G(z) = a z + b and a Gaussian energy U(x) = −(x − μ)²/(2s²):
# π(z) ∝ exp(U(G(z)) − z²/2) is Gaussian with precision λ = a²/s² + 1 and mean a(μ − b)/(s²λ).
A, B, MU, S = 2.0, 0.5, 1.5, 1.0
PRECISION = A * A / S**2 + 1.0          # 5
MEAN = A * (MU - B) / (S * S * PRECISION)  # 0.4
VAR = 1.0 / PRECISION                    # 0.2
CHAINS = 4000


def _energy(x):
  return -((x[:, 0] - MU) ** 2) / (2 * S * S)


def _generator(z):
  return A * z + B


@pytest.mark.parametrize("step_size,num_steps", [(0.1, 300), (0.3, 600)])
def test_mala_targets_the_latent_gaussian(step_size, num_steps):
  # Chains start far away (z0 ~ N(3, 1)). Standard errors with 4000 independent chains:
  # mean sqrt(0.2/4000) = 0.007, variance 0.2·sqrt(2/4000) = 0.0045. Measured errors:
  # ε = 0.1: mean −0.0046, var +0.0028 (acceptance 0.92); ε = 0.3: mean +0.0042,
  # var −0.0036 (acceptance 0.63). Asserted: 0.02 and 0.012 (about 3 standard errors).
  # At ε = 0.3 the unadjusted Langevin chain would have variance 2/(λ(2 − ελ)) = 0.8, so
  # the variance check fails without the Metropolis correction.
  log_density = sampling.latent_log_density(_energy, _generator)
  z0 = 3.0 + jax.random.normal(jax.random.PRNGKey(1), (CHAINS, 1))
  z, acceptance = jax.jit(lambda k: sampling.mala(log_density, z0, k, num_steps, step_size))(
      jax.random.PRNGKey(0))
  z = np.asarray(z[:, 0], np.float64)
  assert abs(z.mean() - MEAN) < 0.02
  assert abs(z.var() - VAR) < 0.012
  assert 0.5 < float(acceptance) <= 1.0


def test_sample_energy_model_maps_chains_through_the_generator():
  # q_m's samples are G(z): mean A·0.4 + B = 1.3, variance A²·0.2 = 0.8 (std errors 0.014, 0.018).
  x, _ = jax.jit(lambda k: sampling.sample_energy_model(_energy, _generator, 1, k, CHAINS,
                                                        200, 0.1))(jax.random.PRNGKey(2))
  assert x.shape == (CHAINS, 1)
  assert abs(float(jnp.mean(x)) - (A * MEAN + B)) < 0.05
  assert abs(float(jnp.var(x)) - A * A * VAR) < 0.05


def test_zero_steps_return_the_start_and_bad_settings_are_refused():
  z0 = jnp.ones((3, 2))
  log_density = sampling.latent_log_density(lambda x: -jnp.sum(x**2, -1), lambda z: z)
  z, _ = sampling.mala(log_density, z0, jax.random.PRNGKey(0), 0, 0.1)
  np.testing.assert_array_equal(z, z0)
  with pytest.raises(InvalidArgumentError, match="step_size"):
    sampling.mala(log_density, z0, jax.random.PRNGKey(0), 5, 0.0)
  with pytest.raises(InvalidArgumentError, match="num_steps"):
    sampling.mala(log_density, z0, jax.random.PRNGKey(0), -1, 0.1)
