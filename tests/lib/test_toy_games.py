"""Toy games: closed forms vs the implementation, theory (linearised maps) vs measurement.

Everything runs in float32. Tolerance notes:
* a per-step ratio of norms in float32 carries a few ulps of round-off
  (~1e-7 relative), so exact closed forms are checked to rtol 1e-5;
* measured asymptotic rates are least-squares slopes of log-distance over
  hundreds of steps; we require 1% agreement not only of ρ (the spec, loose
  when ρ ≈ 1) but of the exponent log ρ, i.e. of the convergence speed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import optim
from ebm_gan import schemes
from ebm_gan.errors import InvalidArgumentError
from ebm_gan.games import theory
from ebm_gan.games import toy as tg
from ebm_gan.games import vectorised as vz


def _run(game, method, lrs, steps, radius=1.0, seeds=1, inits=None, **kw):
  """Runs ``method`` on ``game`` for every η in ``lrs`` (× seeds) in one program."""
  lrs = np.repeat(np.asarray(lrs, np.float64), seeds)
  if inits is None:
    keys = jax.random.split(jax.random.key(0), len(lrs))
    inits = jax.vmap(lambda k: game.init(k, radius))(keys)
  group = vz.Group(game, vz.parse_method(method), lrs, inits)
  return vz.run_groups([group], steps, **kw)[0]


def _assert_rate(measured, theory, tol=1e-2):
  assert abs(measured / theory - 1) < tol, (measured, theory)
  assert abs(np.log(measured) / np.log(theory) - 1) < tol, (measured, theory)


def _random_matrix(seed, shape, singular_values):
  """U diag(s) Vᵀ with Haar-random U, V: a non-trivial A whose slowest mode is controlled."""
  rng = np.random.default_rng(seed)
  u = np.linalg.qr(rng.standard_normal((shape[0], shape[0])))[0]
  v = np.linalg.qr(rng.standard_normal((shape[1], shape[1])))[0]
  s = np.zeros(shape)
  s[:len(singular_values), :len(singular_values)] = np.diag(singular_values)
  return u @ s @ v.T


RANDOM_A = _random_matrix(3, (3, 2), [1.3, 0.6])
GAMES = {
    "A=1": lambda: tg.bilinear([[1.0]]),
    "random 3x2 A, b, c": lambda: tg.bilinear(RANDOM_A, b=RANDOM_A @ [0.5, -1.0],
                                              c=RANDOM_A.T @ [1.0, 0.0, 2.0]),
    "random 3x3 A": lambda: tg.bilinear(_random_matrix(4, (3, 3), [1.5, 1.0, 0.5])),
}


@pytest.mark.parametrize("eta", [0.05, 0.1, 0.3])
def test_simultaneous_gda_on_xy_grows_by_sqrt_1_plus_eta2(eta):
  res = _run(tg.bilinear([[1.0]]), "gda", [eta], 200, bound=1e30)
  ratios = res.distances[0, 1:] / res.distances[0, :-1]
  np.testing.assert_allclose(ratios, np.sqrt(1 + eta ** 2), rtol=1e-5)
  np.testing.assert_allclose(theory.theoretical_rate(tg.bilinear([[1.0]]), "gda", "simultaneous", eta),
                             np.sqrt(1 + eta ** 2), rtol=1e-12)


@pytest.mark.parametrize("eta", [0.1, 0.5, 1.5])
def test_alternating_gda_on_xy_stays_bounded(eta):
  # y steps first (y' = y + ηx, x' = x − ηy'), which conserves I = x² + y² + ηxy exactly;
  # so d_t/d_0 ∈ [√((1−η/2)/(1+η/2)), √((1+η/2)/(1−η/2))] for every t.
  res = _run(tg.bilinear([[1.0]]), "alternating_gda", [eta], 5000)
  x, y = res.points[0].T
  inv = x ** 2 + y ** 2 + eta * x * y
  np.testing.assert_allclose(inv, inv[0], rtol=1e-4)  # float32 drift over 5000 steps
  bound = np.sqrt((1 + eta / 2) / (1 - eta / 2))
  ratio = res.distances[0] / res.distances[0, 0]
  assert ratio.max() <= bound * (1 + 1e-4) and ratio.min() >= (1 - 1e-4) / bound
  assert res.diverged_at[0] == -1


@pytest.mark.parametrize("name", list(GAMES))
@pytest.mark.parametrize("method", ["ogda", "extragradient"])
def test_ogda_and_extragradient_converge_at_the_theoretical_rate(name, method):
  game = GAMES[name]()
  m = vz.parse_method(method)
  sigma_max = np.linalg.svd(game.A, compute_uv=False).max()
  for eta in (0.2 / sigma_max, 0.4 / sigma_max):
    rho = theory.theoretical_rate(game, m.optimizer, m.scheme, eta)
    assert rho < 1
    # enough steps for the slowest mode to dominate, not so many that it hits the float floor
    steps = int(min(4000, np.log(1e-6) / np.log(rho)))
    res = _run(game, method, [eta], steps)
    assert res.distances[0, -1] < 1e-2 * res.distances[0, 0]
    _assert_rate(vz.measured_rate(res.distances[0], res.diverged_at[0], game.distance_floor()),
                 rho)


def test_ogda_on_xy_matches_math_md_example():
  # docs/theory.md §7: A = 1, η = 0.1, start (1, 1): OGDA distance ≈ 0.009 at t = 1000, and the whole
  # trajectory equals iterating the linear map (float64) from z_0 = (e_0, J e_0) ('repeat').
  game = tg.bilinear([[1.0]])
  start = {"x": jnp.ones((1, 1)), "y": jnp.ones((1, 1))}
  res = _run(game, "ogda", [0.1], 1000, inits=start)
  assert abs(res.distances[0, -1] - 0.009) < 0.0002
  M = theory.linearised_map(game, "ogda", "simultaneous", 0.1)
  z = np.concatenate([[1.0, 1.0], game.jacobian() @ [1.0, 1.0]])
  expected = np.linalg.norm((np.linalg.matrix_power(M, 1000) @ z)[:2])
  np.testing.assert_allclose(res.distances[0, -1], expected, rtol=1e-3)  # 1000 float32 steps


@pytest.mark.parametrize("optimizer", ["gda", "ogda"])
@pytest.mark.parametrize("scheme", ["simultaneous", "alternating", "extragradient"])
def test_linearised_map_is_the_implemented_update(optimizer, scheme):
  # On a linear game the update IS linear: 3 real steps (two-timescale η, 2 critic steps)
  # equal M³ z_0 with z_0 = (e_0, 0) ('zero' first step: the stored direction starts at 0).
  game = tg.quadratic(2, mu=0.2, b=np.array([1.0, -1.0]))
  eta, ratio, k = 0.1, 2.0, 2
  txs = {p: (optim.ogda(lr, first_step="zero") if optimizer == "ogda" else optim.gda(lr))
         for p, lr in theory.player_learning_rates(game, eta, ratio).items()}
  update = jax.jit(schemes.make_update(game.directions_fn, txs, scheme,
                                       critics=game.critics, critic_steps=k))
  params = game.init(jax.random.key(1))
  states = {p: txs[p].init(params[p]) for p in params}
  e0 = np.concatenate([params["x"] - game.equilibrium()["x"],
                       params["y"] - game.equilibrium()["y"]])
  for _ in range(3):
    params, states, _, _ = update(params, states, jax.random.key(0))
  M = theory.linearised_map(game, optimizer, scheme, eta, critic_lr_ratio=ratio, critic_steps=k)
  expected = (np.linalg.matrix_power(M, 3) @ np.concatenate([e0, np.zeros(4)]))[:4]
  got = np.concatenate([params["x"] - game.equilibrium()["x"],
                        params["y"] - game.equilibrium()["y"]])
  np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("eta", [0.1, 0.5])
@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
def test_dirac_gan_simultaneous_gd_modulus(eta, loss):
  # Near θ* = 0 the map is I − hJ, J = [[0, −½], [½, 0]] normal: every step multiplies the
  # distance by √(1 + h²f'(0)²), f'(0) = ½. Starting at radius 1e-4 (≤ 2e-3 after 100 steps)
  # the nonlinearity of f' changes it by O(r²) ≤ 1e-6 relative.
  game = tg.DiracGAN(loss)
  assert game.fprime0 == 0.5
  res = _run(game, "gda", [eta], 100, radius=1e-4)
  ratios = res.distances[0, 1:] / res.distances[0, :-1]
  np.testing.assert_allclose(ratios, np.sqrt(1 + eta ** 2 * 0.25), rtol=1e-5)


def test_dirac_gan_penalty_above_critical_value_converges():
  h = 0.1
  game = tg.DiracGAN("minimax", penalty=0.0)
  gamma_c = game.critical_penalty(h)
  assert gamma_c == pytest.approx(h * 0.25)
  for gamma, converges in ((4 * gamma_c, True), (0.5, True), (0.5 * gamma_c, False)):
    g = tg.DiracGAN("minimax", penalty=gamma)
    rho = theory.theoretical_rate(g, "gda", "simultaneous", h)
    assert (rho < 1) == converges
    if gamma < 2 * g.fprime0:  # complex eigenvalues: |1 − hλ|² = 1 − hγ + h²f'(0)²
      np.testing.assert_allclose(rho, np.sqrt(1 - h * gamma + h ** 2 / 4), rtol=1e-12)
    steps = int(min(5000, np.log(1e4) / abs(np.log(rho))))  # to 1e-4 d_0 (or 5000)
    res = _run(g, "gda", [h], steps, radius=0.1)
    d = res.distances[0]
    if converges:
      assert d[-1] < 1e-3 * d[0]
      _assert_rate(vz.measured_rate(d, res.diverged_at[0]), rho)
    else:
      assert d[-1] > d[0]


@pytest.mark.parametrize("game", [tg.bilinear([[1.0, 2.0], [0.5, -1.0]], c=[1.0, 0.0]),
                                  tg.quadratic(3, b=np.ones(3)),
                                  tg.DiracGAN("minimax", 0.3), tg.DiracGAN("wasserstein")])
def test_closed_form_jacobian_matches_autodiff(game):
  np.testing.assert_allclose(theory.numerical_jacobian(game), game.jacobian(), atol=1e-6)


def test_directions_follow_the_descent_convention():
  # f = xᵀAy + bᵀx + cᵀy: x descends f, y descends −f (ascends f); no user sign flips.
  A, b, c = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]), np.ones(3), np.array([2.0, -1.0])
  game = tg.bilinear(A, b, c)
  x, y = jnp.array([0.1, -0.2, 0.3]), jnp.array([0.5, 0.7])
  d, _ = game.directions_fn({"x": x, "y": y})
  np.testing.assert_allclose(d["x"], A @ y + b, rtol=1e-6)
  np.testing.assert_allclose(d["y"], -(A.T @ x + c), rtol=1e-6)


def test_equilibrium_and_distance_for_rectangular_a():
  game = GAMES["random 3x2 A, b, c"]()
  d, _ = game.directions_fn(game.equilibrium())
  np.testing.assert_allclose(np.concatenate([d["x"], d["y"]]), 0.0, atol=1e-5)
  # moving along ker Aᵀ (a whole line of equilibria) does not change the distance
  null = np.linalg.svd(RANDOM_A.T)[2][-1]
  p = game.init(jax.random.key(0), 1.0)
  moved = {"x": p["x"] + 5.0 * null, "y": p["y"]}
  np.testing.assert_allclose(game.distance(moved), game.distance(p), rtol=1e-5)
  np.testing.assert_allclose(game.distance(p), 1.0, rtol=1e-5)


def test_divergence_is_detected_per_run_and_others_go_on():
  # Sim GDA on xy: d_t = (1+η²)^{t/2} exactly, so with bound 100 the run with η = 0.5
  # diverges at the first t with 1.25^{t/2} > 100 (t = 42); the η = 0.3 one goes on, unchanged.
  game = tg.bilinear([[1.0]])
  start = {"x": jnp.array([[0.6], [0.6]]), "y": jnp.array([[0.8], [0.8]])}
  both = _run(game, "gda", [0.5, 0.3], 60, bound=100.0, inits=start)
  alone = _run(game, "gda", [0.3], 60, bound=100.0, inits=jax.tree.map(lambda v: v[1:], start))
  t_div = int(np.ceil(2 * np.log(100.0) / np.log(1.25)))
  assert both.diverged_at.tolist() == [t_div, -1]
  assert np.isnan(both.distances[0, t_div:]).all() and np.isfinite(both.distances[0, :t_div]).all()
  np.testing.assert_array_equal(both.distances[1], alone.distances[0])
  # NaN/Inf: an overflowing run (η = 1e4, no bound) is caught by the finiteness check
  res = _run(game, "gda", [1e4, 0.1], 30, bound=float("inf"))
  assert res.diverged_at[0] > 0 and res.diverged_at[1] == -1
  assert np.isfinite(np.asarray(res.params["x"][0])).all()  # frozen at its last finite point


def test_loop_of_single_steps_agrees_with_the_vectorised_program():
  game = tg.DiracGAN("minimax", 0.1)
  inits = jax.vmap(lambda k: game.init(k, 0.5))(jax.random.split(jax.random.key(2), 2))
  groups = [vz.Group(game, vz.parse_method(m), np.array([0.1, 0.4]), inits)
            for m in ("ogda", "alternating_gda")]
  vec, loop = vz.run_groups(groups, 25), vz.run_loop(groups, 25)
  for a, b in zip(vec, loop):
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-6)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)


def test_measured_rate_of_a_geometric_sequence():
  d = 2.0 * 0.97 ** np.arange(500)
  assert vz.measured_rate(d) == pytest.approx(0.97, rel=1e-12)
  assert vz.measured_rate(d, diverged_at=5) != vz.measured_rate(d, diverged_at=5)  # NaN
  assert vz.measured_rate(d, floor=1.0) == pytest.approx(0.97, rel=1e-12)


def test_bad_input_errors():
  with pytest.raises(InvalidArgumentError, match=r"b=\[1\.0, 1\.0\] has shape \(2,\).*\(3,\)"):
    tg.bilinear(np.ones((3, 2)), b=np.ones(2))
  with pytest.raises(InvalidArgumentError, match="no equilibrium"):
    tg.bilinear(np.ones((2, 1)), b=[1.0, 0.0])
  with pytest.raises(InvalidArgumentError, match=r"loss='hinge'.*minimax"):
    tg.DiracGAN("hinge")
  with pytest.raises(InvalidArgumentError, match=r"penalty=-1"):
    tg.DiracGAN(penalty=-1.0)
  with pytest.raises(InvalidArgumentError, match=r"methods='gdx'.*alternating_gda.*optimizer@scheme"):
    vz.parse_method("gdx")
  with pytest.raises(InvalidArgumentError, match=r"methods='ogda@sideways': 'sideways'.*extragradient"):
    vz.parse_method("ogda@sideways")
  with pytest.raises(InvalidArgumentError, match="no linearisation"):
    theory.linearised_map(tg.bilinear([[1.0]]), "adam", "simultaneous", 0.1)
  assert np.isnan(theory.theoretical_rate(tg.bilinear([[1.0]]), "optimistic_adam",
                                      "simultaneous", 0.1))
