"""The 'ebm_gan' summary's distribution metrics (ebm_gan/runner/evaluation.py)."""

import types

import jax
import numpy as np
import pytest

from ebm_gan.data import toy
from ebm_gan.runner import evaluation


def _exp(dataset, energy=True, eval_samples=2500):
  game = types.SimpleNamespace(energy_fn=None) if energy else types.SimpleNamespace()
  config = types.SimpleNamespace(seed=0, eval_samples=eval_samples)
  return types.SimpleNamespace(config=config, dataset=toy.get(dataset), game=game)


@pytest.mark.slow  # ~7 s on the loaded 2-core machine, nearly all of it compiling
def test_a_perfect_model_scores_near_zero_on_every_metric():
  """Generator samples = fresh data, energy = log p (25 gaussians). Measured: mmd2 3.0e-6
  (tolerance 1e-3, 3 std of MMD²_u between samples of one law, test_metrics);
  kl_generator_data 0.034 (the kNN entropy's error, std 0.034; tolerance 0.07 ≈ 2×);
  kl_data_model 3e-7 (q_m normalised over the plane, docs/theory.md (9.3); tolerance 1e-5);
  model_near_modes 0.98889 = 1 − e^{−4.5} (error 4e-7, tolerance 1e-5); model_mass_outside
  7.9e-4 (p's own mass off the box ±4.15, 3σ beyond the outer modes: 1.08e-3, less the
  midpoint rule's error at the box's edge; tolerance 6e-4, tests/test_metrics.py);
  model_heldout_ll −0.0582 against −H(p) = −log 25 − 1 − log(2πσ²) = −0.0653 (σ = 0.05, the
  modes ≥ 13σ apart): off by 0.0071, the held-out mean's standard error being 0.020 (std of
  log p(y) 0.99 over 2500 points); tolerance 0.05. A shift by 0.5 gives mmd2 0.0080."""
  exp = _exp("25gaussians")
  m = evaluation.DensityMetrics(exp)
  assert m.heldout.shape == (2500, 2)
  sample = jax.jit(exp.dataset.sample, static_argnums=1)
  assert not np.allclose(m.heldout, sample(jax.random.PRNGKey(0), 2500))  # not the seed's key
  samples = np.asarray(sample(jax.random.PRNGKey(7), 2500))
  out = m(samples, m.log_prob)
  assert set(out) == {"mmd2", "kl_generator_data", "kl_data_model", "model_near_modes",
                      "model_mode_factor", "model_mass_outside", "model_heldout_ll",
                      "model_mass_beyond_grid"}
  assert abs(out["mmd2"]) < 1e-3 and abs(out["kl_generator_data"]) < 0.07, out
  assert abs(out["kl_data_model"]) < 1e-5, out
  # 1 − e^{−4.5} = 0.98889 of p lies within 3σ of a mode, equally shared (tests/test_metrics.py)
  assert abs(out["model_near_modes"] - (1 - np.exp(-4.5))) < 1e-5, out
  assert out["model_mode_factor"] < 1 + 1e-5, out
  assert abs(out["model_mass_outside"] - 1.08e-3) < 6e-4, out
  entropy = np.log(25) + 1 + np.log(2 * np.pi * exp.dataset.std**2)
  assert abs(out["model_heldout_ll"] + entropy) < 0.05, out
  assert m(samples + 0.5, m.log_prob)["mmd2"] > 0.004  # measured 0.0080


def test_which_metrics_each_case_gets():
  samples = np.arange(8.0).reshape(4, 2)
  assert set(evaluation.DensityMetrics(_exp("swissroll", eval_samples=4))(samples, None)) == {
      "mmd2"}  # no closed-form density
  swissroll = evaluation.DensityMetrics(_exp("swissroll", eval_samples=4))
  assert set(swissroll(samples, lambda x: -(x**2).sum(-1))) == {"mmd2", "model_heldout_ll",
                                                                "model_mass_beyond_grid"}
  gan = evaluation.DensityMetrics(_exp("rings", energy=False, eval_samples=4))
  assert set(gan(samples, None)) == {"mmd2", "kl_generator_data"}  # a GAN's logit is no energy
  assert gan(samples * np.nan, None) == {}  # diverged samples
