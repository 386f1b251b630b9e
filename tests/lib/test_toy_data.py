"""The toy zoo (ebm_gan/data/toy.py): shapes, seeds, moments and mode frequencies against
analytic values, and the closed-form log-densities against their definitions.

Moments and frequencies are over N = 200 000 samples (key 0). Each tolerance is the larger
of twice the deviation measured at that key and twice the statistic's standard error
(√(Var/N); for the second moments, the SE of the x₁² entry)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan.data import toy

N = 200_000
NU = 3 * math.pi  # the spirals' largest angle


def _cov(mxx, mxy, myy):
  return np.array([[mxx, mxy], [mxy, myy]])


def _moons_cov():
  # t ~ U(0, π): E cos t = 0, E sin t = 2/π, E cos² = E sin² = ½, E cos·sin = 0; each moon ½.
  # x: E x = ½, E x² = ½(½ + E(1 − cos t)²) = 1  → Var x = ¾.
  # y: E y = ¼, E y² = ½(½ + ¾ − 2/π)            → Var y = 9/16 − 1/π.
  # E xy = ½ E[(1 − cos t)(½ − sin t)] = ¼ − 1/π → Cov = 1/8 − 1/π.  Then ×2², + 0.1² I.
  return 4 * _cov(0.75, 0.125 - 1 / math.pi, 0.5625 - 1 / math.pi) + 0.01 * np.eye(2)


def _spirals_cov():
  # ν has density 2ν/N² on [0, N], N = 3π; x = ±ν(−cos ν, sin ν)/3 + 0.1ε. By parts, with
  # cos 2N = 1, sin 2N = 0: ∫₀ᴺ ν³ cos 2ν dν = 3N²/4 and ∫₀ᴺ ν³ sin 2ν dν = −N³/2 + 3N/4, so
  # E ν² = N²/2, E ν² cos 2ν = 3/2, E ν² sin 2ν = −N + 3/(2N), and
  # E x₁² = (N²/4 + 3/4)/9, E x₂² = (N²/4 − 3/4)/9, E x₁x₂ = −E[ν² sin 2ν]/18.
  return _cov((NU ** 2 / 4 + 0.75) / 9, (NU - 1.5 / NU) / 18,
              (NU ** 2 / 4 - 0.75) / 9) + 0.01 * np.eye(2)


def _pinwheel_cov():
  # Five arms at angles 2πc/5: any k-fold symmetry (k ≥ 3) makes the covariance isotropic,
  # so Cov = ½ E|x|² I = ½ · 1.75² · (E a² + E b²) I, a = 1 + 0.3ε₁, b = 0.1ε₂.
  return 0.5 * 1.75 ** 2 * (1 + 0.09 + 0.01) * np.eye(2)


# name: (analytic covariance (every mean is 0), tolerance on both, measured max deviation of
# the mean / of the covariance, standard error of the x₁² entry)
MOMENTS = {
    "8gaussians": (2.0 + 0.02 ** 2, 0.007, (0.0023, 0.0012, 0.0032)),     # r²/2 + σ², r = 2
    "25gaussians": (4 * 2.0 + 0.05 ** 2, 0.03, (0.0054, 0.0096, 0.015)),  # 2² E g², g ~ U{−2..2}
    "rings": ((0.75 ** 2 + 1.5 ** 2 + 2.25 ** 2 + 9) / 8 + 0.08 ** 2, 0.012,
              (0.0041, 0.0049, 0.0055)),                                  # mean r²/2 + σ²
    "circles": ((1.25 ** 2 + 2.5 ** 2) / 4 + 0.1 ** 2, 0.017, (0.0033, 0.0085, 0.0045)),
    "checkerboard": (_cov(3.0, 0.5625, 3.0), 0.016, (0.0076, 0.0038, 0.0060)),  # see below
    "2spirals": (_spirals_cov(), 0.012, (0.0015, 0.0060, 0.0060)),
    "pinwheel": (_pinwheel_cov(), 0.009, (0.0038, 0.0043, 0.0037)),
    "moons": (_moons_cov(), 0.016, (0.0032, 0.0080, 0.0071)),
}
# Checkerboard: centres c ∈ {±0.75, ±2.25}, side 1.5; E x² = mean c² + 1.5²/12 = 2.8125 +
# 0.1875 = 3; E xy = mean over the 8 black squares of c_i c_j = 4.5/8 = 0.5625.


def _sample(name, key=0, n=N):
  return np.asarray(jax.jit(toy.get(name).sample, static_argnums=1)(jax.random.PRNGKey(key), n),
                    np.float64)


@pytest.mark.parametrize("name", sorted(toy.DATASETS))
def test_every_dataset_is_jittable_seeded_and_of_shape_n_by_2(name):
  d = toy.get(name)
  f = jax.jit(d.sample, static_argnums=1)
  a, b = f(jax.random.PRNGKey(3), 4096), f(jax.random.PRNGKey(3), 4096)
  assert a.shape == (4096, 2) and a.dtype == jnp.float32
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, f(jax.random.PRNGKey(4), 4096))
  assert 2.0 <= d.scale <= 4.2
  assert np.mean(np.all(np.abs(np.asarray(a)) <= d.scale, 1)) > 0.99  # the picture box


@pytest.mark.parametrize("name", sorted(MOMENTS))
def test_mean_and_covariance_match_the_analytic_values(name):
  cov, tol, _ = MOMENTS[name]
  x = _sample(name)
  cov = cov * np.eye(2) if np.isscalar(cov) else cov
  assert np.abs(x.mean(0)).max() < tol, (name, x.mean(0))
  np.testing.assert_allclose(np.cov(x.T), cov, atol=tol, err_msg=name)


@pytest.mark.parametrize("name,radii,tol", [("rings", (0.75, 1.5, 2.25, 3.0), 3.5e-3),
                                            ("circles", (1.25, 2.5), 5.3e-3)])
def test_rings_are_equally_frequent(name, radii, tol):
  """Ring of each sample = nearest radius (gap ≥ 0.75 ≫ σ). Each frequency 1/K; standard
  error √(p(1−p)/N) 9.7e-4 (rings), 1.1e-3 (circles); measured max deviation 1.6e-3
  (rings), 2.6e-3 (circles)."""
  rho = np.linalg.norm(_sample(name), axis=1)
  ring = np.abs(rho[:, None] - np.array(radii)).argmin(1)
  np.testing.assert_allclose(np.bincount(ring) / N, 1 / len(radii), atol=tol)


def test_checkerboard_fills_only_its_black_squares_equally():
  """Every sample on a black square (i + j even); each of the 8 with frequency 1/8
  (standard error 7.4e-4; measured max deviation 1.4e-3 at key 0)."""
  ij = np.floor((_sample("checkerboard") + 3.0) / 1.5).astype(int)
  assert ij.min() >= 0 and ij.max() <= 3 and np.all(ij.sum(1) % 2 == 0)
  freq = np.bincount(ij[:, 0] * 4 + ij[:, 1], minlength=16)[[0, 2, 5, 7, 8, 10, 13, 15]] / N
  np.testing.assert_allclose(freq, 1 / 8, atol=3e-3)


@pytest.mark.parametrize("name,tol", [("8gaussians", 3e-3), ("25gaussians", 1.8e-3)])
def test_mixture_modes_are_equally_frequent(name, tol):
  """Nearest-mode frequencies 1/K (standard error 7.4e-4 / 4.4e-4; measured max deviation
  1.4e-3 (8gaussians), 8.6e-4 (25gaussians))."""
  d = toy.get(name)
  near = ((_sample(name)[:, None] - d.modes[None]) ** 2).sum(-1).argmin(1)
  np.testing.assert_allclose(np.bincount(near) / N, 1 / len(d.modes), atol=tol)


def _grid(bound, n):
  h = 2 * bound / n
  c = -bound + h * (np.arange(n) + 0.5)
  return np.stack(np.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2), h * h


@pytest.mark.parametrize("name,bound,n", [("8gaussians", 2.3, 300), ("25gaussians", 4.5, 300),
                                          ("rings", 3.7, 300), ("circles", 3.2, 300),
                                          ("checkerboard", 3.0, 300)])
def test_log_prob_integrates_to_one(name, bound, n):
  """Midpoint rule on cells of side ≤ 0.77σ (error ≈ 2exp(−2π²σ²/h²) < 1e-14; exact for the
  checkerboard, whose squares are unions of cells) and boxes ≥ 5σ beyond the outermost
  mass: measured |1 − Σ a p| ≤ 6.4e-7 (float32 rounding of log p)."""
  x, area = _grid(bound, n)
  p = np.exp(np.asarray(toy.get(name).log_prob(jnp.asarray(x, jnp.float32)), np.float64))
  assert abs(p.sum() * area - 1) < 1.3e-6, p.sum() * area


def test_mixture_log_prob_is_the_gaussian_mixture_density():
  """The 25 Gaussian densities written out (where the density is > 1e-30)."""
  rng = np.random.default_rng(0)
  x = rng.uniform(-3, 3, (50, 2))
  d = toy.get("25gaussians")
  dens = np.exp(-((x[:, None] - d.modes) ** 2).sum(-1) / (2 * d.std ** 2)).mean(1)
  dens /= 2 * np.pi * d.std ** 2
  near = dens > 1e-30
  np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(x, jnp.float32)))[near],
                             np.log(dens[near]), rtol=1e-5)


def test_rings_log_prob_is_the_angular_average_of_gaussians():
  """N(x; r u(θ), σ²I) averaged over 4000 equally spaced angles (the definition, not the
  Bessel form; the θ-peak is ≥ 0.026 rad wide, 16 spacings) where the density is > 1e-20."""
  rng = np.random.default_rng(0)
  r = toy.get("rings")
  x = rng.uniform(-3.2, 3.2, (50, 2))
  t = 2 * np.pi * (np.arange(4000) + 0.5) / 4000
  u = np.stack([np.cos(t), np.sin(t)], 1)
  dens = np.mean([np.exp(-((x[:, None] - rad * u) ** 2).sum(-1) / (2 * r.std ** 2)).mean(1)
                  for rad in r.radii], 0) / (2 * np.pi * r.std ** 2)
  near = dens > 1e-20
  np.testing.assert_allclose(np.exp(np.asarray(r.log_prob(jnp.asarray(x, jnp.float32))))[near],
                             dens[near], rtol=1e-4)


def test_checkerboard_log_prob_is_uniform_on_black_squares():
  c = toy.get("checkerboard")
  lp = np.asarray(c.log_prob(jnp.array([[-2.9, -2.9], [-2.9, -1.4], [0.1, 0.1], [3.5, 0.0]])))
  np.testing.assert_allclose(lp, [-math.log(18), -np.inf, -math.log(18), -np.inf])
