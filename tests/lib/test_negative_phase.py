"""The energy's MALA negatives (docs/theory.md (11.5)) against a Gaussian closed form.

With the quadratic energy U = −½‖x − μ‖² (P = I), ∇_μ U(x) = x − μ and q_m = N(μ, I), so
E_{q_m}[∇_μ U] = 0 and the maximum-likelihood direction of the energy's loss −L1 is
−(E_p[x] − μ), whatever the generator. The seed's L1 uses x ~ q_f instead, which gives
−(E_p[x] − E_{q_f}[x]). Chains started at the generator's samples must turn the second
into the first.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import game, models
from ebm_gan.entropy import NoEntropy

DATA_MEAN = np.array([1.0, -0.5])
GEN_MEAN = np.array([3.0, 3.0])  # q_f = N(GEN_MEAN, I), far from q_m = N(0, I)
N = 4096


def _directions(steps, step_size=0.5):
  g = game.EBMGame(models.QuadraticEnergy(2), models.AffineGenerator(2, 2), entropy=NoEntropy(),
                   negative_steps=steps, negative_step_size=step_size)
  x_data = jnp.asarray(DATA_MEAN) + jax.random.normal(jax.random.PRNGKey(1), (N, 2))
  params = g.init(jax.random.PRNGKey(0), x_data)
  params["generator"]["params"]["b"] = jnp.asarray(GEN_MEAN, jnp.float32)
  value, directions = jax.jit(g.value_and_directions)(params, x_data, jax.random.PRNGKey(2))
  return value, directions, params, g, x_data


def test_without_negatives_the_energy_direction_contrasts_data_with_the_generator():
  value, d, *_ = _directions(0)
  # −(E_p[x] − E_{q_f}[x]) = GEN_MEAN − DATA_MEAN = (2, 3.5); Monte Carlo sd of each mean
  # over 4096 samples is 1/64 ≈ 0.016; measured errors 0.027 / 0.029, asserted 0.06.
  np.testing.assert_allclose(d["energy"]["params"]["mu"], GEN_MEAN - DATA_MEAN, atol=0.06)
  assert "negative_acceptance" not in value


def test_mala_negatives_give_the_maximum_likelihood_direction():
  value, d, *_ = _directions(100)
  # −(E_p[x] − μ) with μ = 0: −DATA_MEAN = (−1, 0.5). 100 MALA steps of ε = 0.5 from 3.6 sd
  # away mix (the chain's mean decays by ~(1 − ε/2) per step). Measured errors 0.022 / 0.003
  # (the seed's direction above is off by 3.0 / 3.0); asserted 0.05.
  np.testing.assert_allclose(d["energy"]["params"]["mu"], -DATA_MEAN, atol=0.05)
  # Standard Gaussian target, ε = 0.5, averaged over the burn-in too: measured 0.88.
  assert 0.75 < float(value["negative_acceptance"]) <= 1.0


def test_mala_negatives_have_the_targets_second_moment():
  """q_m = N(0, I) (λ = 1), chains from q_f = N(GEN_MEAN, I), 100 steps of ε = 0.5. The
  Metropolis step makes q_m invariant, so E[x_k²] → 1 per coordinate; without it (the
  unadjusted Langevin chain) the stationary variance is 2/(λ(2 − ελ)) = 4/3 (docs/theory.md
  §11). The mean of x² over the N = 4096 chains' two coordinates has standard error
  √(2/8192) = 0.016 at q_m. Measured over keys 0–4 (x_gen from keys 100–104): 0.968–1.019, at
  most 0.032 from 1 (key 0: 0.989); bound 0.064. With the accept/reject step removed the same
  keys gave 1.325–1.364."""
  g = game.EBMGame(models.QuadraticEnergy(2), models.AffineGenerator(2, 2), entropy=NoEntropy(),
                   negative_steps=100, negative_step_size=0.5)
  params = g.init(jax.random.PRNGKey(0), jnp.zeros((N, 2)))
  x_gen = jnp.asarray(GEN_MEAN, jnp.float32) + jax.random.normal(jax.random.PRNGKey(100), (N, 2))
  x_neg, _ = jax.jit(g._negatives)(params, x_gen, jax.random.PRNGKey(0))
  second_moment = float(np.mean(np.asarray(x_neg, np.float64) ** 2))
  assert abs(second_moment - 1.0) < 0.064, second_moment


def test_the_generator_never_sees_the_negatives():
  """The generator's direction is the same bit for bit with or without the chain."""
  _, plain, *_ = _directions(0)
  _, moved, *_ = _directions(20)
  for a, b in zip(jax.tree.leaves(plain["generator"]), jax.tree.leaves(moved["generator"])):
    np.testing.assert_array_equal(a, b)


def test_negatives_are_constants_to_the_energy():
  """The chain runs on frozen parameters: the energy's direction is exactly the gradient of
  −(mean U(x_data) − mean U(x_neg)) with x_neg held fixed (checked by hand for ∇_μ: x − μ)."""
  g = game.EBMGame(models.QuadraticEnergy(2), models.AffineGenerator(2, 2), entropy=NoEntropy(),
                   negative_steps=5, negative_step_size=0.5)
  x_data = jnp.asarray(DATA_MEAN) + jax.random.normal(jax.random.PRNGKey(1), (64, 2))
  params = g.init(jax.random.PRNGKey(0), x_data)
  params["energy"]["params"]["mu"] = jnp.array([0.3, -0.2])
  losses, shared = g.losses(x_data, jax.random.PRNGKey(2))
  s = {"generator": shared["generator"](params)}
  x_neg, _ = g._negatives(params, s["generator"][0], jax.random.split(jax.random.PRNGKey(2), 3)[1])
  assert float(jnp.max(jnp.abs(x_neg - s["generator"][0]))) > 0.1  # the chain moved them
  grad = jax.grad(lambda p: losses["energy"](p, s)[0])(params)["energy"]["params"]["mu"]
  mu = params["energy"]["params"]["mu"]
  expected = -(jnp.mean(x_data - mu, 0) - jnp.mean(x_neg - mu, 0))
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(8, 4, 4, 1)])
def test_image_shaped_negatives_keep_their_shape(shape):
  class Pixels(models.QuadraticEnergy):
    def __call__(self, x):
      return super().__call__(x.reshape(x.shape[0], -1))

  g = game.EBMGame(Pixels(16), models.AffineGenerator(2, 2), entropy=NoEntropy(),
                   negative_steps=3, negative_step_size=0.1)
  x = jnp.ones(shape)
  params = {"energy": Pixels(16).init(jax.random.PRNGKey(0), x)}
  x_neg, metrics = g._negatives(params, x, jax.random.PRNGKey(1))
  assert x_neg.shape == shape and float(metrics["negative_acceptance"]) > 0
