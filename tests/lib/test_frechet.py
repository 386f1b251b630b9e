"""The Fréchet distance (docs/theory.md (10.4)) against closed forms, its finite-n bias, and
FD-digits on the classifier's features of real digits and of noise."""

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from ebm_gan import classifier, frechet, modes
from ebm_gan.errors import InvalidArgumentError

RTOL = 4e-15  # the closed forms' tolerance, relative (see test_one_dimension_by_hand)


def _rotation(d, seed=0):
  return scipy.stats.special_ortho_group.rvs(d, random_state=seed)


def test_one_dimension_by_hand():
  """N(1, 4) and N(3, 9): (1 − 3)² + (2 − 3)² = 5 (measured exact here; asserted 4e-15 relative,
as every closed form below: ~4× their largest measured error, 1e-15, a few ulps)."""
  assert frechet.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(5.0, rel=RTOL)


def test_diagonal_covariances():
  """‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)² = 5 + 5.5 (measured exact)."""
  a, b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
  m1, m2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
  expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert expected == 10.5
  assert frechet.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(
      expected, rel=RTOL)


def test_commuting_full_covariances():
  """C_k = Q diag(λ_k) Qᵀ with one rotation Q: the diagonal formula in Q's eigenbasis
  (d = 6, FD = 78.36: measured relative error 2e-16)."""
  q = _rotation(6)
  a, b = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([6.0, 0.5, 3.0, 1.0, 0.1, 2.0])
  m1, m2 = np.arange(6.0), np.arange(6.0)[::-1]
  expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = frechet.frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T)
  assert got == pytest.approx(expected, rel=RTOL)


def test_two_dimensions_without_commuting():
  """For 2 × 2 covariances, tr M^{1/2} = √(tr M + 2√det M) with M = C₁^{1/2}C₂C₁^{1/2}, whose
  trace is tr(C₁C₂) and determinant det C₁ det C₂ (FD = 2.327: measured relative error 8e-16)."""
  c1, c2 = np.array([[2.0, 0.7], [0.7, 1.0]]), np.array([[0.5, -0.2], [-0.2, 3.0]])
  cross = np.sqrt(np.trace(c1 @ c2) + 2 * np.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
  expected = 1.0 + np.trace(c1) + np.trace(c2) - 2 * cross      # means (0, 0) and (1, 0)
  got = frechet.frechet_distance([0.0, 0.0], c1, [1.0, 0.0], c2)
  assert got == pytest.approx(expected, rel=RTOL)


def test_rank_one_covariances():
  """C₁ = uuᵀ, C₂ = vvᵀ (both singular, not commuting): C₁^{1/2} = uuᵀ/‖u‖ and the trace term
  is |u·v|, so FD = ‖u‖² + ‖v‖² − 2|u·v| = 7.25 (measured relative error 1e-15)."""
  u, v = np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, 3.0])
  got = frechet.frechet_distance(np.zeros(3), np.outer(u, u), np.zeros(3), np.outer(v, v))
  assert np.isfinite(got)
  assert got == pytest.approx(u @ u + v @ v - 2 * abs(u @ v), rel=RTOL)


def test_a_point_mass_against_a_gaussian():
  """C₁ = 0: FD = ‖μ₁ − μ₂‖² + tr C₂, the mean squared distance from μ₁ to N(μ₂, C₂)
  (measured exact)."""
  c2 = np.array([[2.0, 0.5], [0.5, 1.0]])
  assert frechet.frechet_distance([1.0, 1.0], np.zeros((2, 2)), [0.0, 0.0], c2) == pytest.approx(
      2.0 + 3.0, rel=RTOL)


@pytest.fixture(scope="module")
def rank_deficient_moments():
  """Moments of 359 samples in 384 dimensions (the held-out stacked digits' shape): rank 358."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(359, 384)) @ rng.normal(size=(384, 384)) * 0.3
  y = rng.normal(size=(359, 384)) @ rng.normal(size=(384, 384)) * 0.3 + 0.1
  return frechet.gaussian_moments(x), frechet.gaussian_moments(y)


def test_equal_gaussians_and_symmetry(rank_deficient_moments):
  """FD(x, x) = 0 to 1e-9 (tr C ≈ 13 000; measured 7e-12 before the clip at 0, where the
  eigenvalues of C₁^{1/2}C₂C₁^{1/2} or scipy.linalg.sqrtm leave 3e-5), and FD(x, y) = FD(y, x)
  (measured equal to the last bit; asserted 1e-14 relative), with no NaN although both
  covariances are singular."""
  (m1, c1), (m2, c2) = rank_deficient_moments
  assert np.linalg.matrix_rank(c1) == 358
  assert frechet.frechet_distance(m1, c1, m1, c1) <= 1e-9
  forward, backward = frechet.frechet_distance(m1, c1, m2, c2), frechet.frechet_distance(
      m2, c2, m1, c1)
  assert np.isfinite(forward) and forward > 0
  assert forward == pytest.approx(backward, rel=1e-14)


def test_agrees_with_scipy_sqrtm_where_that_is_safe():
  """Full-rank, well-conditioned 6-D covariances: the textbook route (scipy.linalg.sqrtm of
  C₁^{1/2}C₂C₁^{1/2}) agrees (measured relative difference 3e-15; asserted 1e-14)."""
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  c1, c2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  s1 = scipy.linalg.sqrtm(c1).real
  textbook = (np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2)
              - 2 * np.trace(scipy.linalg.sqrtm(s1 @ c2 @ s1)).real)
  assert frechet.frechet_distance(m1, c1, m2, c2) == pytest.approx(textbook, rel=1e-14)


def _bias(cov, n):
  """E[FD(μ̂, Ĉ; μ, C)] to first order in 1/n for n Gaussian samples (docs/theory.md (10.5)):
  (tr C + ½ Σ_{i,j} λ_iλ_j(1 + δ_ij)/(λ_i + λ_j)) / n, λ the eigenvalues of C."""
  lam = np.linalg.eigvalsh(cov)
  pair = np.outer(lam, lam) * (1 + np.eye(lam.size)) / np.add.outer(lam, lam)
  return (lam.sum() + 0.5 * pair.sum()) / n


def test_sample_moments_approach_the_true_ones_at_the_predicted_rate():
  """n = 200 000 draws of N(μ, C) in 3-D, C with eigenvalues 1, 4, 9 (rotated): FD(μ̂, Ĉ; μ, C)
  is of the order of the bias (10.5), 25.5/n = 1.27e-4. One draw is below 4× it (measured
  0.18–3.1× over 60 draws, 1.8× for this one); the mean of 20 draws is within 35% of it
  (measured 0.99 for this seed, 1.24 and 1.16 for seeds 1 and 2)."""
  mean, n = np.array([1.0, -2.0, 0.5]), 200_000
  q = _rotation(3, seed=2)
  cov = q @ np.diag([1.0, 4.0, 9.0]) @ q.T
  chol = np.linalg.cholesky(cov)
  rng = np.random.default_rng(0)
  fds = [frechet.frechet_distance(*frechet.gaussian_moments(mean + rng.normal(size=(n, 3)) @ chol.T),
                                  mean, cov) for _ in range(20)]
  expected = _bias(cov, n)
  assert expected == pytest.approx(25.47 / n, rel=1e-3)
  assert fds[0] < 4 * expected
  assert np.mean(fds) == pytest.approx(expected, rel=0.35)


def test_gaussian_moments_unbiased_covariance():
  x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
  mean, cov = frechet.gaussian_moments(x)
  np.testing.assert_allclose(mean, [2.0, 2.0])
  np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-14)
  assert mean.dtype == cov.dtype == np.float64


@pytest.mark.parametrize("bad", [np.zeros((1, 3)), np.zeros(3), np.full((4, 2), np.nan)])
def test_bad_features_are_refused(bad):
  with pytest.raises(InvalidArgumentError, match="features"):
    frechet.gaussian_moments(bad)


def test_bad_moments_are_refused():
  with pytest.raises(InvalidArgumentError, match="shapes"):
    frechet.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
  with pytest.raises(InvalidArgumentError, match="NaN"):
    frechet.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.inf))


@pytest.fixture(scope="module")
def digits_classifier():
  """A classifier after 50 Adam steps on 80% of the real digits (94% held-out accuracy;
  ~4 s with its compilation), and the train and held-out images."""
  sklearn_datasets = pytest.importorskip("sklearn.datasets")
  d = sklearn_datasets.load_digits()
  images = (d.images / 8.0 - 1.0).astype(np.float32)[..., None]
  train, held = classifier.stratified_split(d.target, 0.2, seed=0)
  params = classifier.train_classifier(jax.random.PRNGKey(0), images[train], d.target[train],
                                       steps=50, batch_size=64)
  return params, images[train], images[held]


def test_feature_shapes(digits_classifier):
  params, train, _ = digits_classifier
  single = classifier.features(params, train[:5], batch_size=2)
  assert single.shape == (5, 128) and np.all(single >= 0)  # ReLU activations
  stacked = np.concatenate([train[:5], train[5:10], train[10:15]], axis=-1)
  both = modes.channel_features(lambda x: classifier.features(params, x), stacked)
  assert both.shape == (5, 384)
  np.testing.assert_array_equal(both[:, 128:256], classifier.features(params, train[5:10]))
  assert classifier.features(params, train[:0]).shape == (0, 128)


def test_real_digits_are_near_the_held_out_ones_and_noise_is_far(digits_classifier):
  """FD-digits (128 features) of the 1438 training digits against the 359 held-out ones vs
  1438 uniform-noise images: measured 0.98 and 152; asserted a factor ≥ 30 between them."""
  params, train, held = digits_classifier
  noise = np.random.default_rng(0).uniform(-1, 1, train.shape).astype(np.float32)
  heldout = classifier.features(params, held)
  real = frechet.features_distance(classifier.features(params, train), heldout)
  fake = frechet.features_distance(classifier.features(params, noise), heldout)
  assert 0 < real and fake > 30 * real
