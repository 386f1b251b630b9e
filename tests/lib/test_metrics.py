"""The distribution metrics (ebm_gan/metrics.py, docs/theory.md §9) against closed forms.

Gaussian log-densities, the Gaussian KL and the Gaussian-RBF MMD are written out here;
every tolerance says what was measured."""

import math

import jax
import numpy as np
import pytest

from ebm_gan import metrics
from ebm_gan.data import toy

M1, S1 = np.array([0.3, -0.2]), np.array([[1.0, 0.3], [0.3, 0.6]])
M2, S2 = np.array([-0.4, 0.5]), np.array([[0.8, -0.2], [-0.2, 1.3]])


def gaussian_log_density(mean, cov):
  inv, log_det = np.linalg.inv(cov), math.log(np.linalg.det(2 * np.pi * cov))
  def log_p(x):
    d = np.asarray(x, np.float64) - mean
    return -0.5 * np.einsum("ni,ij,nj->n", d, inv, d) - 0.5 * log_det
  return log_p


def gaussian_kl(m1, s1, m2, s2):
  """KL(N(m1, s1) ‖ N(m2, s2)) = ½[tr(s2⁻¹s1) + Δᵀs2⁻¹Δ − d + log det s2/det s1]."""
  inv, d = np.linalg.inv(s2), m2 - m1
  return 0.5 * (np.trace(inv @ s1) + d @ inv @ d - len(m1)
                + math.log(np.linalg.det(s2) / np.linalg.det(s1)))


def gaussian_samples(seed, n, shift=0.0):
  """n samples of N(M1 + shift, S1)."""
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n, 2)), np.float64)
  return z @ np.linalg.cholesky(S1).T + M1 + shift


def test_quadrature_kl_of_the_mixture_against_its_widened_self_is_the_closed_form():
  """p = 25-gaussians (σ = 0.05), U_m = log q + 3 with q the same modes at std s = 2σ, written
  out here (not the library's mixture). The modes are ≥ 2 = 20s apart, so the KL is the
  components' KL to within terms of order e^{−2²/8s²} = e^{−50}:
  KL(N(μ, σ²I) ‖ N(μ, s²I)) = σ²/s² − 1 + 2 log(s/σ) = 2 log 2 − 3/4 = 0.636294. Box ±4.15,
  n = 192 (the summary's grid): measured error −5.9e-7, bound 1.2e-6. (At n = 256 the error is
  −1.0e-5: the margin of 8h then ends 4.1s beyond the outer modes, where q's tail meets the
  coarse cells.)

  Cut to the box (outer = 1) with U_m = log p the value is P log P, P = p's midpoint mass on the
  box at n = 256, written out here as 1-D sums (the grid is a tensor product on the box):
  −9.0648e-4; measured error 3.1e-7 (float32 log p), bound 6e-7."""
  d = toy.get("25gaussians")
  modes = np.asarray(d.modes)
  widened = _mixture_log_density(modes, np.full(25, 1 / 25), 2 * d.std)
  kl = metrics.quadrature_kl(d.log_prob, widened, d.scale, 192)
  assert abs(kl - (2 * math.log(2) - 0.75)) < 1.2e-6, kl
  h = 2 * d.scale / 256
  centres = -d.scale + h * (np.arange(256) + 0.5)
  def on_box(m):  # the 1-D midpoint mass of N(m, σ²) on the box
    density = np.exp(-0.5 * ((centres - m) / d.std) ** 2) / (d.std * math.sqrt(2 * math.pi))
    return np.sum(h * density)
  p_box = np.mean([on_box(mx) * on_box(my) for mx, my in modes])
  cut = metrics.quadrature_kl(d.log_prob, d.log_prob, d.scale, 256, outer=1)
  assert abs(cut - p_box * math.log(p_box)) < 6e-7, (cut, p_box * math.log(p_box))


def test_quadrature_kl_between_two_gaussians_is_the_closed_form():
  """p = N(M1, S1), U_m = log N(M2, S2) + 7 (unnormalised: log Z_m = 7 is found by the
  quadrature). Closed form 0.703172276632; measured 0.703172276608 on ±8, 256 cells
  (±6, 128 cells: 0.7031715)."""
  log_q = gaussian_log_density(M2, S2)
  kl = metrics.quadrature_kl(gaussian_log_density(M1, S1), lambda x: log_q(x) + 7.0, 8.0, 256)
  assert abs(kl - gaussian_kl(M1, S1, M2, S2)) < 1e-3, kl


def test_heldout_log_likelihood_is_the_closed_form_and_counts_mass_off_the_box():
  """q_m = ½N(M1, S) + ½N(M1 + (5, 0), S), S = S1/10, given as U = log q_m + 3 on the box
  ±2.5: the second half lies off the box. On 200 points of the first component the metric
  is their mean log q_m, computed here by the formula: measured |Δ| 6e-9 with n = 192;
  asserted 1e-6, the size of rounding the points to float32 (|∇log q_m|·|y|·2⁻²⁴ per point).
  Normalised on the box alone it reads log 2 higher (measured |Δ − log 2| 2e-9)."""
  s, shift = S1 / 10, np.array([5.0, 0.0])
  log_a, log_b = gaussian_log_density(M1, s), gaussian_log_density(M1 + shift, s)
  log_q = lambda x: np.logaddexp(log_a(x), log_b(x)) - math.log(2.0)
  y = (np.asarray(jax.random.normal(jax.random.PRNGKey(3), (200, 2)), np.float64)
       @ np.linalg.cholesky(s).T + M1)
  want = float(np.mean(log_q(y)))
  got = metrics.heldout_log_likelihood(lambda x: log_q(x) + 3.0, y, 2.5, 192)
  assert abs(got - want) < 1e-6, (got, want)
  box_only = metrics.heldout_log_likelihood(lambda x: log_q(x) + 3.0, y, 2.5, 192, outer=1)
  assert abs(box_only - got - math.log(2.0)) < 1e-6, box_only - got


def test_quadrature_kl_of_the_checkerboard_against_a_gaussian_energy_is_the_closed_form():
  """p uniform on the checkerboard's 8 black squares of side 1.5 on [−3, 3]² (cells align with
  the squares: 64 per square at n = 256; p = 0 elsewhere adds 0), U_m = −‖x‖²/2s², s = 1.5:
  KL(p ‖ q_m) = −H(p) − E_p[U_m] + log Z_m = −log 18 + E_p‖x‖²/2s² + log 2πs². Each column of
  squares holds two black ones, so E_p[x₁²] = mean over the columns [a, b] of (a² + ab + b²)/3 =
  3 (likewise x₂): closed form 1.091769. Measured error −7.3e-5 at n = 256 (−2.5e-4 at 128:
  O(h²), of which −h²/12s² = −2e-5 is the midpoint rule's E_p‖x‖²); bound 1.5e-4."""
  d, s = toy.get("checkerboard"), 1.5
  columns = [(-3 + 1.5 * i, -1.5 + 1.5 * i) for i in range(4)]
  second_moment = 2 * np.mean([(a * a + a * b + b * b) / 3 for a, b in columns])
  closed = -math.log(18) + second_moment / (2 * s * s) + math.log(2 * math.pi * s * s)
  kl = metrics.quadrature_kl(d.log_prob, lambda x: -(np.asarray(x, np.float64) ** 2).sum(-1)
                             / (2 * s * s), 3.0, 256)
  assert abs(kl - closed) < 1.5e-4, (kl, closed)


def test_mmd_of_two_samples_of_one_distribution_is_near_zero():
  """m = n = 2500 of N(M1, S1): measured −1.0e-5; over 10 such pairs MMD²_u had mean
  1.7e-4 and std 3.4e-4, so the tolerance is 1e-3 (3 std)."""
  assert abs(metrics.mmd2(gaussian_samples(1, 2500), gaussian_samples(2, 2500))) < 1e-3


def test_mmd_is_unbiased_with_the_median_bandwidth():
  """Mean over 100 pairs (m = n = 200) of one distribution: measured −4.2e-4 with standard
  error 2.9e-4 (per-pair std 2.9e-3; other draws −4.8e-4, 3.7e-4, 3.0e-4); tolerance 8.7e-4
  (3 standard errors). The biased V-statistic (diagonal kept) averages 3.8e-3 on the same
  pairs, 13 standard errors away, so the test tells the two apart."""
  z = gaussian_samples(10, 100 * 400).reshape(100, 2, 200, 2)  # 100 pairs of 200 points
  values = [metrics.mmd2(x, y) for x, y in z]
  assert abs(np.mean(values)) < 8.7e-4, (np.mean(values), np.std(values))


def test_mmd_of_a_shifted_gaussian_matches_the_closed_form():
  """With h fixed and x − x' ~ N(m, 2S1): E exp(−‖x − x'‖²/2h²) = h²/√det(h²I + 2S1) ·
  exp(−½ mᵀ(h²I + 2S1)⁻¹m), so MMD² = 2(e(0) − e(δ)) = 0.034518 for δ = (0.5, 0), h = 1.
  Mean over 40 pairs of m = n = 500: measured 0.03459, standard error 0.0014 (per-pair std
  0.0092); tolerance 0.003 (2 standard errors; measured deviation 7e-5). With the median bandwidth at m = n = 2500 the shift gives
  0.040, over 100 times the spread (3.4e-4) of MMD²_u between samples of one distribution."""
  delta, h = np.array([0.5, 0.0]), 1.0
  a = h * h * np.eye(2) + 2 * S1
  def e(m):
    return h * h / math.sqrt(np.linalg.det(a)) * math.exp(-0.5 * m @ np.linalg.solve(a, m))
  closed = 2 * (e(np.zeros(2)) - e(delta))
  z = gaussian_samples(2000, 40 * 1000).reshape(40, 2, 500, 2)  # 40 pairs of 500 points
  values = [metrics.mmd2(x, y + delta, bandwidth=h) for x, y in z]
  assert abs(np.mean(values) - closed) < 0.003, (np.mean(values), closed, np.std(values))
  assert metrics.mmd2(gaussian_samples(1, 2500), gaussian_samples(2, 2500, delta)) > 0.03


def test_generator_kl_matches_the_gaussian_closed_form():
  """q_f = N(M1, S1) from samples (N = 2500), p = N(M2, S2): KL 0.70317. Over 40 draws the
  estimate's error had mean +0.0043 (standard error 0.0054: no bias seen) and std 0.034 (the
  kNN entropy's). The mean of the 16 draws here: measured error −0.0159; tolerance 0.026
  (3 standard errors, 3 · 0.034/√16)."""
  log_p = gaussian_log_density(M2, S2)
  values = [metrics.generator_kl(x, log_p)
            for x in gaussian_samples(100, 16 * 2500).reshape(16, 2500, 2)]
  assert abs(np.mean(values) - gaussian_kl(M1, S1, M2, S2)) < 0.026, values


def test_generator_kl_of_the_mixture_itself_has_the_measured_small_bias():
  """q_f = p = 25-gaussians, so KL(q_f ‖ p) = 0; N = 2500 (the summary's eval_samples), 30
  independent draws (keys fold_in(PRNGKey(0), i)). Measured over 300 draws (10 sets of 30):
  mean +0.027, standard error 0.0018, per-draw std 0.032; the 10 set means ranged 0.019–0.038,
  at most 0.011 from the 300-draw mean (this set: 0.0194). Band: |mean − 0.027| < 0.023 (2×
  that largest deviation); it excludes 0, so the bias the docstring states is asserted, and the
  mean is asserted small (< 0.1)."""
  d = toy.get("25gaussians")
  sample, log_p = jax.jit(d.sample, static_argnums=1), jax.jit(d.log_prob)
  values = [metrics.generator_kl(np.asarray(sample(jax.random.fold_in(jax.random.PRNGKey(0), i),
                                                   2500)), log_p) for i in range(30)]
  assert abs(np.mean(values) - 0.027) < 0.023 and np.mean(values) < 0.1, np.mean(values)


def test_generator_kl_is_infinite_off_the_support():
  d = toy.get("checkerboard")
  x = np.array(jax.jit(d.sample, static_argnums=1)(jax.random.PRNGKey(0), 500))
  log_p = jax.jit(d.log_prob)
  assert np.isfinite(metrics.generator_kl(x, log_p))
  x[0] = (0.1, -0.1)  # on a white square
  assert metrics.generator_kl(x, log_p) == np.inf


@pytest.mark.parametrize("bound,n", [(1.0, 4), (3.0, 256)])
def test_grid_cells_tile_the_box(bound, n):
  x, area = metrics.grid(bound, n)
  assert x.shape == (n * n, 2) and math.isclose(area * n * n, (2 * bound) ** 2)
  np.testing.assert_allclose([x.min(), x.max()], [-bound + bound / n, bound - bound / n],
                             rtol=1e-6)


def test_the_plane_grid_tiles_three_times_the_box_and_marks_the_box():
  x, areas, in_box = metrics.plane_grid(4.15, 192)
  assert math.isclose(areas.sum(), (2 * 3 * 4.15) ** 2, rel_tol=1e-9)  # no gap, no overlap
  assert math.isclose(areas[in_box].sum(), (2 * 4.15) ** 2, rel_tol=1e-9)
  assert in_box.sum() == 192 * 192 and np.abs(x).max() < 3 * 4.15
  with pytest.raises(ValueError, match="must be odd"):
    metrics.plane_grid(1.0, 192, outer=2)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_each_ring_tiles_the_square_between_its_reach_and_the_last(k):
  """Ring k covers [−R_k, R_k]² \\ [−R_{k−1}, R_{k−1}]², R_k = 3·3^k·4.15 (R_0: plane_grid's
  edge), with (144² − 48²) = 18 432 cells of side 4h·3^k at n = 192 (h = 8.3/192)."""
  x, areas = metrics.ring_grid(4.15, 192, k)
  reach, inner, side = 3 * 3**k * 4.15, 3 * 3**(k - 1) * 4.15, 4 * 8.3 / 192 * 3**k
  assert len(x) == 144**2 - 48**2 and np.allclose(areas, side**2, rtol=1e-12)
  assert math.isclose(areas.sum(), (2 * reach) ** 2 - (2 * inner) ** 2, rel_tol=1e-9)
  assert np.abs(x).max() == pytest.approx(reach - side / 2, rel=1e-6)
  assert np.abs(x).max(1).min() == pytest.approx(inner + side / 2, rel=1e-6)


def _isotropic_gaussian_energy(s):
  return lambda x: -(np.asarray(x, np.float64) ** 2).sum(-1) / (2 * s * s)


def test_quadrature_kl_of_a_wide_gaussian_energy_is_the_closed_form():
  """p = 25-gaussians (σ = 0.05, modes μ_c on {−4, −2, 0, 2, 4}², box ±4.15), U_m = −‖x‖²/2s²
  with s = 6: q_m = N(0, s²I) puts 7.5% of its mass beyond ±3·4.15 = ±2.07s.

  KL(p ‖ q_m) = −H(p) − E_p[log q_m]. E_p[log q_m] = −log 2πs² − E_p‖x‖²/2s² exactly, with
  E_p‖x‖² = mean_c ‖μ_c‖² + 2σ² = 16 + 2σ². H(p) = log 25 + log 2πeσ² − δ with 0 ≤ δ ≤
  Σ_{j≠i} e^{−‖μ_i − μ_j‖²/8σ²} ≤ 24·e^{−200} (the mixture bound of Kolchinsky & Tracey 2017
  with the Bhattacharyya distance, modes ≥ 2 = 40σ apart): δ is below 1e-80. Closed form
  5.580342. Measured at n = 256 (the default): error −6.5e-5 (−1.2e-4 at n = 192, O(h²): the
  midpoint rule at the edges between cells of different sizes); bound 1.3e-4. The grid grows
  two rings (to ±9 and ±27 boxes; the second holds 9e-10 of Ẑ_m). Without rings (±3 boxes
  only, as before the rings) it read 5.500946, 0.077 low: the mass beyond was dropped."""
  d, s = toy.get("25gaussians"), 6.0
  entropy = math.log(25) + 1 + math.log(2 * math.pi * d.std**2)
  expected_log_q = -math.log(2 * math.pi * s * s) - (16 + 2 * d.std**2) / (2 * s * s)
  closed = -entropy - expected_log_q
  energy = _isotropic_gaussian_energy(s)
  kl = metrics.quadrature_kl(d.log_prob, energy, d.scale)
  assert abs(kl - closed) < 1.3e-4, (kl, closed)
  norm = metrics.plane_normaliser(energy, d.scale, 256)
  assert norm.rings == 2 and norm.beyond < metrics.TAIL, norm
  assert metrics.quadrature_kl(d.log_prob, energy, d.scale, rings=0) - closed < -0.07


def test_an_energy_too_wide_for_the_cap_reports_its_outermost_ring():
  """U_m = −‖x‖²/2s², s = 300, box ±4.15: the rings reach the cap, ±R₄ = ±243·4.15 = ±3.36s.
  On squares, ∫_{[−R, R]²} e^{U_m} = 2πs² F(R), F(R) = erf(R/s√2)², so the outermost ring's
  share of Ẑ_m is 1 − F(R₃)/F(R₄) = 0.455251 (R₃ = R₄/3) and Ẑ_m = 2πs² F(R₄), which misses
  1 − F(R₄) = 1.5e-3 of the mass. Measured at n = 192: share error −3.7e-5, relative error of
  Ẑ_m −5.7e-5 (O(h²) at the edges between cell sizes); bounds 7e-5 and 1.2e-4."""
  s, bound = 300.0, 4.15
  f = lambda r: math.erf(r / (s * math.sqrt(2))) ** 2
  norm = metrics.plane_normaliser(_isotropic_gaussian_energy(s), bound)
  assert norm.rings == metrics.RINGS == 4, norm
  assert abs(norm.beyond - (1 - f(81 * bound) / f(243 * bound))) < 7e-5, norm
  assert abs(math.exp(norm.log_z) / (2 * math.pi * s * s * f(243 * bound)) - 1) < 1.2e-4, norm


def test_an_energy_that_grows_outward_is_reported_not_hidden():
  """U_m = x₁ (q_m not normalisable): the rings run to the cap, ±R₄ = ±243·4.15, and the
  outermost holds all of Ẑ_m but ~e^{−2R₄/3} (1.0 in floats). Its cells (side w = 4h·81) in
  x₁ sum a geometric series: Ẑ_m = 2R₄ · e^{R₄} (w/2)/sinh(w/2) up to e^{−w}-relative terms, so
  KL(p ‖ q_m) = log Ẑ_m − H(p) − E_p[x₁] with E_p[x₁] = 0 and H(p) as in the test above.
  Measured at n = 256: log Ẑ_m off by 2.4e-5 (the float32 cell centres near 1000: ulp 6e-5),
  the KL by 2.8e-4 (p's grid mass differs from 1 by 3e-7, times log Ẑ_m = 1013); bounds 5e-5
  and 6e-4. Cut at ±3 boxes (rings = 0) the KL read 15.6: finite, the growth hidden."""
  d, n = toy.get("25gaussians"), 256
  grows = lambda x: np.asarray(x, np.float64)[:, 0]
  reach, w = 243 * d.scale, 4 * 2 * d.scale / n * 81
  log_z = reach + math.log(2 * reach) + math.log(w / 2 / math.sinh(w / 2))
  norm = metrics.plane_normaliser(grows, d.scale, n)
  assert norm.rings == metrics.RINGS and norm.beyond == 1.0, norm
  assert abs(norm.log_z - log_z) < 5e-5, (norm.log_z, log_z)
  entropy = math.log(25) + 1 + math.log(2 * math.pi * d.std**2)
  assert abs(metrics.quadrature_kl(d.log_prob, grows, d.scale, n) - (log_z - entropy)) < 6e-4


def test_mmd_flattens_image_samples():
  """Two 2×2×1 images of zeros vs two of ones, h = 1: the pixels differ by ‖1‖² = 4, so
  MMD²_u = k(x₁, x₂) + k(y₁, y₂) − 2·k(x, y) = 1 + 1 − 2e^{−4/2} = 1.729329 (9.1)."""
  x, y = np.zeros((2, 2, 2, 1)), np.ones((2, 2, 2, 1))
  assert metrics.mmd2(x, y, bandwidth=1.0) == pytest.approx(2.0 - 2.0 * np.exp(-2.0), rel=1e-6)
  # The median bandwidth pools the flattened rows: distances 0 (×2) and 2 (×4) → median 2.
  assert metrics.median_bandwidth(x, y) == pytest.approx(2.0)


def _mixture_log_density(modes, weights, s):
  """log Σ_c w_c N(x; μ_c, s²I) in 2-D, written out (not the library's mixture)."""
  def log_p(x):
    d2 = ((np.asarray(x, np.float64)[:, None, :] - modes[None]) ** 2).sum(-1)
    comp = np.log(weights)[None] - 0.5 * d2 / s ** 2 - math.log(2 * math.pi * s ** 2)
    top = comp.max(1, keepdims=True)
    return (top + np.log(np.exp(comp - top).sum(1, keepdims=True)))[:, 0] + 3.0  # + log Z
  return log_p


@pytest.mark.parametrize("s_over_sigma", [1.0, 2.0])
def test_energy_mode_mass_of_an_uneven_mixture_is_the_closed_form(s_over_sigma):
  """Three modes 2 apart (σ = 0.05, disks of 3σ), weights 0.5, 0.3, 0.2, std s: each disk holds
  w_c(1 − exp(−9σ²/2s²)) — 0.98889 in all at s = σ, 0.67535 at s = 2σ — and the worst share
  is 1/(3·0.2) = 1.667 times uniform. Measured |error| of the mass 4.5e-8 (s = σ) and 5e-10
  (s = 2σ) on the 192-cell grid of ±3 (cell 0.031 ≤ s), of the factor 1.2e-7; asserted 1e-5
  (a 96-cell grid at s = σ already errs by 1.3e-5: Ẑ's midpoint rule, not the disks)."""
  sigma = 0.05
  modes = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, -2.0]])
  log_p = _mixture_log_density(modes, np.array([0.5, 0.3, 0.2]), s_over_sigma * sigma)
  out = metrics.energy_mode_mass(log_p, modes, sigma, 3.0, 192)
  assert abs(out["model_near_modes"] - (1 - math.exp(-4.5 / s_over_sigma ** 2))) < 1e-5, out
  assert abs(out["model_mode_factor"] - 1 / 0.6) < 1e-5, out


def test_energy_mode_mass_of_the_data_itself_and_of_an_energy_off_the_modes():
  """U = log p of 25-gaussians: near = 1 − e^{−4.5} = 0.98889 (measured error 3.9e-7, asserted
  1e-5), factor 1 (measured 1.2e-7); the mass off the box ±4.15 is the outer modes' tails,
  1 − (1 − 0.4·Φ(−3))² = 1.0796e-3, measured 7.906e-4: the box's edge cuts each tail 3σ out,
  where the midpoint rule (h = 0.86σ) errs by O(h²) (asserted 6e-4, 2× that). A bump away
  from every mode: near ≈ 0, factor = ∞ where a mode's share underflows to 0."""
  d = toy.get("25gaussians")
  out = metrics.energy_mode_mass(d.log_prob, d.modes, d.std, d.scale, 192)
  assert abs(out["model_near_modes"] - (1 - math.exp(-4.5))) < 1e-5, out
  assert abs(out["model_mode_factor"] - 1.0) < 1e-5, out
  tail = 0.5 * math.erfc(3 / math.sqrt(2))
  assert abs(out["model_mass_outside"] - (1 - (1 - 0.4 * tail) ** 2)) < 6e-4, out
  far = metrics.energy_mode_mass(lambda x: -((np.asarray(x) - 1.0) ** 2).sum(-1) / 0.01,
                                 d.modes, d.std, d.scale, 192)
  assert far["model_near_modes"] < 1e-6 and far["model_mode_factor"] == np.inf, far


def test_mass_the_energy_puts_off_the_data_box_is_counted():
  """q_m = 0.8·p + 0.2·N((5, 0), 0.5²I), p the three-mode mixture below (σ = 0.05, box ±3): a
  fifth of q_m lies off the box, where the data never are. Closed forms: near = 0.8·(1 − e^{−4.5})
  = 0.79111, the mass off the box 0.2·(1 − Φ(−4)) = 0.199994, KL(p ‖ q_m) = −log 0.8 = 0.22314
  (the bump's density on p's modes is < e^{−18} of p's). Measured errors −1.1e-6, +1.2e-6 and
  +1.5e-6 (asserted 3e-6), of the factor 1/0.6: 7.6e-8. Cut to the box (outer = 1), q_m would
  pass for p: KL 7.9e-6 and near 0.98888."""
  sigma, bump_at, bump_s = 0.05, np.array([5.0, 0.0]), 0.5
  modes = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, -2.0]])
  weights = np.array([0.5, 0.3, 0.2])
  log_p = _mixture_log_density(modes, weights, sigma)
  log_bump = _mixture_log_density(bump_at[None], np.ones(1), bump_s)

  def energy(x):  # log(0.8 p + 0.2 bump) + 3 (unnormalised), log p itself carries + 3
    return np.logaddexp(math.log(0.8) + log_p(x), math.log(0.2) + log_bump(x))

  def log_p_normalised(x):
    return log_p(x) - 3.0
  out = metrics.energy_mode_mass(energy, modes, sigma, 3.0, 192)
  assert abs(out["model_near_modes"] - 0.8 * (1 - math.exp(-4.5))) < 3e-6, out
  assert abs(out["model_mass_outside"] - 0.2 * (1 - 0.5 * math.erfc(4 / math.sqrt(2)))) < 3e-6
  assert abs(out["model_mode_factor"] - 1 / 0.6) < 1e-6, out
  kl = metrics.quadrature_kl(log_p_normalised, energy, 3.0, 192)
  assert abs(kl + math.log(0.8)) < 3e-6, kl
  cut = metrics.quadrature_kl(log_p_normalised, energy, 3.0, 192, outer=1)
  cut_near = metrics.energy_mode_mass(energy, modes, sigma, 3.0, 192, outer=1)
  assert abs(cut) < 2e-5 and abs(cut_near["model_near_modes"] - (1 - math.exp(-4.5))) < 1e-5


def test_mode_metrics_of_a_widened_mixture_are_the_chi2_closed_forms():
  """Samples around 25 modes with std s = 2σ: d/σ ~ 2·χ₂, so high_quality = 1 − e^{−9/8} =
  0.67535, stray = e^{−4.5} = 0.011109 (docs/theory.md (9.8)). Binomial standard errors on
  200 000 samples: 1.0e-3 and 2.3e-4; asserted to 3e-3 and 7e-4 (3 standard errors; seed 0
  measured −3e-5 and +2.9e-4, seeds 0-4 at most 1.7e-3 and 2.9e-4). The histogram's KL from
  uniform is (K − 1)/2N ≈ 9e-5 for N ≈ 135 000 high-quality samples (measured 8.6e-5)."""
  mix = toy.get("25gaussians")
  rng = np.random.default_rng(0)
  n, modes = 200_000, np.asarray(mix.modes)
  x = modes[rng.integers(0, 25, n)] + 2 * mix.std * rng.standard_normal((n, 2))
  m = metrics.mode_metrics(x, modes, mix.std)
  assert abs(m["high_quality"] - (1 - math.exp(-9 / 8))) < 3e-3, m
  assert abs(m["stray"] - math.exp(-4.5)) < 7e-4, m
  assert m["modes_covered"] == m["modes_covered_20"] == 25 and m["mode_kl"] < 2e-4, m


def test_mode_metrics_tell_near_misses_from_stray_samples():
  """Hand-placed samples on 25-gaussians (σ = 0.05, spacing 2): 2 on modes, 1 at 4σ (a near
  miss), 1 halfway between two modes (a bridge, 20σ away)."""
  mix = toy.get("25gaussians")
  x = np.array([[0.0, 0.0], [2.0, 2.0], [0.2, 0.0], [1.0, 0.0]])
  m = metrics.mode_metrics(x, np.asarray(mix.modes), mix.std)
  assert m["high_quality"] == 0.5 and m["stray"] == 0.25 and m["modes_covered"] == 2, m


def test_a_mode_is_covered_by_one_high_quality_sample_and_covered_at_20_by_twenty():
  """The default thresholds (the protocol's ≥ 1, docs/theory.md (9.8); and ≥ 20): on
  25-gaussians (σ = 0.05) mode (0, 0) gets 1 high-quality sample, (2, 0) 19, (0, 2) 20 and
  (−2, 0) 21, each at 2σ; (2, 2) gets 30 samples at 4σ, near misses that cover nothing. So 4
  modes are covered, 2 of them at 20."""
  mix = toy.get("25gaussians")
  counts = {(0.0, 0.0): 1, (2.0, 0.0): 19, (0.0, 2.0): 20, (-2.0, 0.0): 21}
  x = [np.array(mode) + (0.1, 0.0) for mode, k in counts.items() for _ in range(k)]
  x += [np.array([2.0, 2.2])] * 30
  m = metrics.mode_metrics(np.array(x), np.asarray(mix.modes), mix.std)
  assert (m["modes_covered"], m["modes_covered_20"], m["num_modes"]) == (4, 2, 25), m
  assert m["high_quality"] == 61 / 91, m
