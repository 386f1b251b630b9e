"""Convergence rates of GDA, extragradient, OGDA and alternating GDA against closed forms.

The other rate tests (test_toy_games.py) compare a run with the library's own
linearised map. Here the expected rate is the largest modulus of the roots of a
characteristic polynomial written out by hand, one per eigenvalue μ of the game
Jacobian J (the direction field is d = J e near θ*, e = θ − θ*):

* simultaneous GDA, e' = e − ηd:                 λ − (1 − ημ)
* extragradient, e' = e − ηJ(e − ηJe):           λ − (1 − ημ + η²μ²)
* OGDA, e' = e − η((α+β)d_t − βd_{t−1}):         λ² − (1 − η(α+β)μ)λ − ηβμ
  (α = β = 1: λ² − λ + 2ημλ − ημ; the first-step convention only sets the
  constant in front of λ^t, not λ)
* alternating GDA on min_x max_y σxy, the critic y first with step rη (or r
  critic sub-steps): y' = y + rησx, x' = x − ησy', i.e. the map
  [[1 − rη²σ², −ησ], [rησ, 1]], with trace 2 − rη²σ² and determinant 1:
                                                  λ² − (2 − rη²σ²)λ + 1
  so |λ| = 1 while rη²σ² < 4 (bounded, never converging) and > 1 beyond.

Games: the bilinear f = xᵀAy (μ = ±iσ_k, σ_k the singular values of A) and the
quadratic f = ½p‖x‖² + a xᵀRy − ½q‖y‖² (R orthogonal; J = [[pI, aR], [−aRᵀ, qI]],
μ = (p+q)/2 ± √(((p−q)/2)² − a²)).

Each test asserts (a) the hand-written roots give games.theory.theoretical_rate
(float64 against float64: measured ≤ 1e-15; bound 1e-12, a few hundred ulps of
the 4×4 eigenproblem) and (b) the per-step rate measured on a float32 run of the
library's optimisers (vectorised.run_groups; a least-squares slope of log ‖e_t‖
written here) matches the closed form.
"""

import jax
import numpy as np
import pytest

from ebm_gan.games import theory
from ebm_gan.games import toy as tg
from ebm_gan.games import vectorised as vz

FLOOR = 1e-15  # distances below this are left out of fits (float32, θ* = 0)


def _rotation(seed, n):
  return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]


def _bilinear_eigenvalues(sigmas):
  return [s * 1j for s in sigmas] + [-s * 1j for s in sigmas]


def _char_poly(method, eta, mu, alpha=1.0, beta=1.0):
  """Coefficients (highest power first) of the characteristic polynomial for one mode μ."""
  if method == "gda":
    return [1.0, -(1.0 - eta * mu)]
  if method == "extragradient":
    return [1.0, -(1.0 - eta * mu + (eta * mu) ** 2)]
  if method == "ogda":
    return [1.0, -(1.0 - eta * (alpha + beta) * mu), -eta * beta * mu]
  raise ValueError(method)


def _closed_rate(method, eta, mus, **kw):
  return max(np.abs(np.roots(_char_poly(method, eta, mu, **kw))).max() for mu in mus)


def _alternating_closed_rate(eta, sigmas, r=1.0):
  return max(np.abs(np.roots([1.0, -(2.0 - r * (eta * s) ** 2), 1.0])).max() for s in sigmas)


def _fitted_rate(d, last_fraction=0.5):
  """exp of the least-squares slope of log d_t over the last part of the finite run above FLOOR."""
  d = np.asarray(d, np.float64)
  ok = np.isfinite(d) & (d > FLOOR)
  n = int(np.argmin(ok)) if not ok.all() else len(d)
  t = np.arange(int(n * (1 - last_fraction)), n)
  assert len(t) >= 10, n
  return float(np.exp(np.polyfit(t, np.log(d[t]), 1)[0]))


def _run_all(game, specs, steps, **kw):
  """One compiled program for several (method, η's, options) groups on ``game``."""
  groups = []
  for method, etas, options in specs:
    keys = jax.random.split(jax.random.key(0), len(etas))
    inits = jax.vmap(lambda k: game.init(k, 1.0))(keys)
    groups.append(vz.Group(game, vz.parse_method(method), np.asarray(etas, np.float64), inits,
                           options))
  return vz.run_groups(groups, steps, bound=1e30, **kw)


def _run(game, method, etas, steps, options=None, **kw):
  return _run_all(game, [(method, etas, options or {})], steps, **kw)[0]


BILINEAR = {
    "scalar sigma=1": (lambda: tg.bilinear([[1.0]]), [1.0]),
    # a non-diagonal A = U diag(1, 0.5) Vᵀ: only its singular values enter the closed form
    "rotated sigma=(1, 0.5)": (lambda: tg.bilinear(_rotation(1, 2) @ np.diag([1.0, 0.5])
                                                   @ _rotation(2, 2).T), [1.0, 0.5]),
}
# η's chosen so that every run either converges to FLOOR or diverges within the steps
# (OGDA at η = 0.6 diverges on σ = 1: ρ = 1.0574, the closed form says so too).
ETAS = {"gda": [0.3, 0.45, 0.6], "extragradient": [0.3, 0.6, 0.8], "ogda": [0.3, 0.45, 0.6]}


@pytest.mark.parametrize("name", list(BILINEAR))
@pytest.mark.parametrize("method", ["gda", "extragradient", "ogda"])
def test_bilinear_rates_are_roots_of_the_characteristic_polynomial(method, name):
  """Simultaneous GDA: |1 ∓ iησ| = √(1 + η²σ²); extragradient: |1 − η²σ² ∓ iησ|;
  OGDA: the larger root of λ² − (1 ∓ 2iησ)λ ± iησ; maximised over the σ_k.

  (a) measured |closed − theoretical_rate| ≤ 1.6e-15 (bound 1e-12). (b) over these 18
  float32 runs (GDA 600 steps, the others 1500; diverging ones up to ‖e‖ = 1e30),
  measured |log ρ_run / log ρ_closed − 1| ≤ 1.3e-6 (OGDA at η = 0.6, diverging; ≤ 1.6e-7
  for the others): bound 3e-6. The η's keep the two modes of the rotated game apart
  (with GDA at η = 0.1 the σ = 0.5 mode still weighed 1.9e-3 after 1500 steps)."""
  make, sigmas = BILINEAR[name]
  game = make()
  etas = ETAS[method]
  optimizer, scheme = {"gda": ("gda", "simultaneous"), "extragradient": ("gda", "extragradient"),
                       "ogda": ("ogda", "simultaneous")}[method]
  mus = _bilinear_eigenvalues(sigmas)
  closed = [_closed_rate(method, eta, mus) for eta in etas]
  for eta, rho in zip(etas, closed):
    assert abs(rho - theory.theoretical_rate(game, optimizer, scheme, eta)) < 1e-12
  if method == "gda":  # the closed form of docs/theory.md (7.14)
    np.testing.assert_allclose(closed, np.sqrt(1 + np.square(etas) * max(sigmas) ** 2),
                               rtol=1e-14)
  res = _run(game, method, etas, 600 if method == "gda" else 1500)
  for i, rho in enumerate(closed):
    measured = _fitted_rate(res.distances[i])
    assert abs(np.log(measured) / np.log(rho) - 1) < 3e-6, (etas[i], measured, rho)


def test_ogda_alpha_beta_rates_are_roots_of_the_characteristic_polynomial():
  """OGDA(α, β) on σxy: ρ = max |root| of λ² − (1 ∓ iη(α+β))λ ± iηβ, with either first-step
  convention. β < α can diverge: (α, β) = (1, 0.5) at η = 0.3 gives ρ = 1.00244 > 1
  (the closed form and the run agree), while (0.5, 1) and (1, 2) converge.

  Measured (1500 float32 steps): |closed − theoretical_rate| ≤ 9e-16 (bound 1e-12);
  |log ρ_run / log ρ_closed − 1| ≤ 3.9e-7 (α, β = 1, 0.5, 'zero'): bound 8e-7."""
  game = tg.bilinear([[1.0]])
  eta, pairs = 0.3, [(1.0, 0.5), (0.5, 1.0), (1.0, 2.0)]
  cases = [(al, be, first) for first in ("repeat", "zero") for al, be in pairs]
  results = _run_all(game, [("ogda", [eta], {"alpha": al, "beta": be, "first_step": first})
                            for al, be, first in cases], 1500)
  for (alpha, beta, _), res in zip(cases, results):
    rho = _closed_rate("ogda", eta, _bilinear_eigenvalues([1.0]), alpha=alpha, beta=beta)
    library_rate = theory.theoretical_rate(game, "ogda", "simultaneous", eta, alpha=alpha, beta=beta)
    assert abs(rho - library_rate) < 1e-12
    assert (rho > 1) == ((alpha, beta) == (1.0, 0.5))
    measured = _fitted_rate(res.distances[0])
    assert abs(np.log(measured) / np.log(rho) - 1) < 8e-7, (alpha, beta, measured, rho)


@pytest.mark.parametrize("critic", [{"critic_lr_ratio": 1.0}, {"critic_lr_ratio": 2.0},
                                    {"critic_steps": 2}], ids=["r=1", "ratio=2", "2 critic steps"])
def test_alternating_gda_modulus_is_one_below_the_closed_form_threshold(critic):
  """Alternating GDA on xᵀAy (A rotated, σ = 1, 0.5): the roots of λ² − (2 − rη²σ²)λ + 1
  have product 1, so |λ| = 1 exactly while rη²σ² < 4 and the larger real root
  ((rη²σ² − 2) + √((rη²σ² − 2)² − 4))/2 beyond; r = critic_lr_ratio, or the number of
  critic sub-steps (x is fixed while y takes them, so they add up).

  Measured on float32 runs of 1000 steps: bounded cases |ρ_run − 1| ≤ 4.7e-6 (the fitted
  slope of an oscillating distance; bound 1e-5); diverging ones (ρ = 4, 2, 10.4, up to
  ‖e‖ = 1e30) |log ρ_run / log ρ − 1| ≤ 1.2e-8 (bound 3e-8). theoretical_rate agrees
  with the closed form to ≤ 1.1e-14 at ρ = 10.4 (bound 1e-12)."""
  sigmas = [1.0, 0.5]
  game = BILINEAR["rotated sigma=(1, 0.5)"][0]()
  r = critic.get("critic_lr_ratio", 1.0) * critic.get("critic_steps", 1)
  etas = [0.5, 1.5, 2.5]
  closed = [_alternating_closed_rate(eta, sigmas, r) for eta in etas]
  bounded = [r * eta ** 2 < 4 for eta in etas]  # rη²σ² < 4 at σ = 1, the largest
  for eta, rho, ok in zip(etas, closed, bounded):
    h2 = r * eta ** 2
    expected = 1.0 if ok else ((h2 - 2) + np.sqrt((h2 - 2) ** 2 - 4)) / 2
    assert abs(rho - expected) < 1e-12
    assert abs(rho - theory.theoretical_rate(game, "gda", "alternating", eta, **critic)) < 1e-12
  res = _run(game, "alternating_gda", etas, 1000, **critic)
  for i, (rho, ok) in enumerate(zip(closed, bounded)):
    measured = _fitted_rate(res.distances[i])
    if ok:
      assert res.diverged_at[i] == -1
      assert abs(measured - 1) < 1e-5, (etas[i], measured)
    else:
      assert res.diverged_at[i] > 0
      assert abs(np.log(measured) / np.log(rho) - 1) < 3e-8, (etas[i], measured, rho)


QUADRATIC = {
    # p = q: J is normal, μ = p ± ia
    "p=q=0.3, a=1": (0.3, 0.3, 1.0),
    # p ≠ q, complex μ = 0.3 ± i·√(0.64 − 0.04)
    "p=0.5, q=0.1, a=0.8": (0.5, 0.1, 0.8),
    # p ≠ q, real μ = 0.75 ± √(0.0625 − 0.04) = 0.9, 0.6
    "p=1, q=0.5, a=0.2": (1.0, 0.5, 0.2),
}


@pytest.mark.parametrize("name", list(QUADRATIC))
def test_quadratic_game_rates_are_roots_of_the_characteristic_polynomial(name):
  """f = ½p‖x‖² + a xᵀRy − ½q‖y‖², R a 2×2 rotation: μ = (p+q)/2 ± √(((p−q)/2)² − a²)
  by hand; GDA, extragradient and OGDA rates from the same polynomials as the bilinear
  game, at η = 0.2.

  Measured |log ρ_run / log ρ_closed − 1| (float32; until ‖e‖ < FLOOR, 400 steps at most):
  ≤ 1.2e-7 for p = q (J normal); ≤ 2.5e-4 for p ≠ q, where J is not normal, so ‖e_t‖
  oscillates around |λ|^t (complex μ) or a second real mode's transient decays slowly:
  bounds 2.5e-7 and 5e-4. |closed − theoretical_rate| ≤ 1.2e-15 (bound 1e-12)."""
  p, q, a = QUADRATIC[name]
  rot = _rotation(3, 2)
  game = tg.LinearGame(a * rot, P=p * np.eye(2), Q=q * np.eye(2))
  disc = complex(((p - q) / 2) ** 2 - a ** 2)
  mus = [(p + q) / 2 + np.sqrt(disc), (p + q) / 2 - np.sqrt(disc)]
  # the hand-written μ's (each twice) are J's eigenvalues: same characteristic polynomial
  np.testing.assert_allclose(np.poly(game.jacobian()), np.poly(np.repeat(mus, 2)).real,
                             atol=1e-12)
  eta = 0.2
  tol = 2.5e-7 if p == q else 5e-4
  methods = [("gda", "gda", "simultaneous"), ("extragradient", "gda", "extragradient"),
             ("ogda", "ogda", "simultaneous")]
  results = _run_all(game, [(m, [eta], {}) for m, _, _ in methods], 400)
  for (method, optimizer, scheme), res in zip(methods, results):
    rho = _closed_rate(method, eta, mus)
    assert abs(rho - theory.theoretical_rate(game, optimizer, scheme, eta)) < 1e-12
    measured = _fitted_rate(res.distances[0])
    assert abs(np.log(measured) / np.log(rho) - 1) < tol, (method, measured, rho)
