"""A quantity that does not estimate H is never logged as ``entropy`` (docs/theory.md (4.10)).

MEG's statistics-network bound at σ = 0 bounds I(x; z) = ∞, not H: the game logs it as
``mi_bound`` and reports no ``l3`` (which is L1 − Ĥ only when Ĥ estimates H). Estimators
whose value estimates H log ``entropy`` and get ``l3``; MALA's H(x|z) is a lower bound.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import entropy, game, models


def _value(estimator):
  g = game.EBMGame(models.QuadraticEnergy(2), models.MLPGenerator(2, 2, (8,)), entropy=estimator)
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  return g.value_and_directions(params, x, jax.random.PRNGKey(2))[0]


@pytest.mark.parametrize("estimator, name", [
    (entropy.MutualInformation(hidden=(8,)), "mi_bound"),
    (entropy.MutualInformation(sigma=0.1, hidden=(8,)), "mi_bound"),
    (entropy.NoisyGenerator(0.1, posterior="mala", mala_steps=2), "entropy_lower_bound"),
])
def test_bounds_are_logged_under_their_own_names_and_give_no_l3(estimator, name):
  value = _value(estimator)
  assert name in value and np.isfinite(value[name])
  assert "entropy" not in value and "l3" not in value


@pytest.mark.parametrize("estimator", [
    entropy.KNN(1), entropy.JacobianEntropy(), entropy.SpectralStein(),
    entropy.DenoisingScore(0.1, hidden=(8,)), entropy.NoisyGenerator(0.1, proposal="local")])
def test_estimates_are_logged_as_entropy_with_l3(estimator):
  value = _value(estimator)
  np.testing.assert_allclose(value["l3"], value["l1"] - value["entropy"], rtol=1e-6)


def test_no_entropy_logs_no_entropy():
  value = _value(entropy.NoEntropy())
  assert "entropy" not in value and "l3" not in value and "l1" in value
