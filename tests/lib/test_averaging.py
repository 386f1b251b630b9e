"""Iterate averaging and decaying rates (docs/theory.md §7, (7.21)–(7.22)) against hand computation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_gan import game, models, optim, schedules, train
from ebm_gan.entropy import NoEntropy
from ebm_gan.errors import InvalidArgumentError


def test_update_ema_equals_the_hand_computed_average():
  # δ = 0.5 from θ̄_0 = 0 over θ = 1, 3, −2: θ̄ = 0.5, 1.75, −0.125.
  ema = {"w": jnp.zeros(())}
  for theta, expected in [(1.0, 0.5), (3.0, 1.75), (-2.0, -0.125)]:
    ema = train.update_ema(ema, {"w": jnp.asarray(theta)}, 0.5)
    assert float(ema["w"]) == pytest.approx(expected, abs=1e-7)


@pytest.mark.slow  # 3.4 s of the fast subset's 157 s; it stays under 2 min
def test_train_step_keeps_the_average_of_its_own_iterates():
  g = game.EBMGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)), entropy=NoEntropy())
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  tx = optim.gda(0.1)
  state = train.init_state(g, tx, jax.random.PRNGKey(1), x, ema=True)
  step = jax.jit(train.make_train_step(g, tx, ema_decay=0.9))
  expected, iterates = state.params, []
  for _ in range(3):
    state, _ = step(state, x)
    iterates.append(state.params)
    expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, expected, state.params)
  # θ̄_3 = 0.9³θ_0 + 0.1(0.9²θ_1 + 0.9θ_2 + θ_3), float32 rounding only (measured 6e-8).
  for got, want in zip(jax.tree.leaves(state.ema), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, atol=1e-6)
  assert not np.allclose(jax.tree.leaves(state.ema)[0], jax.tree.leaves(iterates[-1])[0])


def test_state_without_average_has_none():
  g = game.EBMGame(models.MLPEnergy((4,)), models.MLPGenerator(2, 2, (4,)), entropy=NoEntropy())
  state = train.init_state(g, optim.gda(0.1), jax.random.PRNGKey(1), jnp.zeros((4, 2)))
  assert state.ema is None


@pytest.mark.parametrize("schedule,expected", [
    ("linear", [1.0, 0.525, 0.05, 0.05]),
    # f + (1 − f)·½(1 + cos πu): u = ½ gives 0.05 + 0.95·0.5 = 0.525 as well.
    ("cosine", [1.0, 0.525, 0.05, 0.05]),
])
def test_decayed_learning_rate_closed_form(schedule, expected):
  rate = schedules.decayed_learning_rate(1.0, schedule, 100, 0.05)
  got = [float(rate(t)) for t in (0, 50, 100, 150)]
  np.testing.assert_allclose(got, expected, atol=1e-6)
  # A quarter of the way: linear 1 − 0.95/4 = 0.7625; cosine 0.05 + 0.95·½(1 + cos π/4) = 0.8609.
  quarter = {"linear": 0.7625, "cosine": 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi / 4))}[schedule]
  assert float(rate(25)) == pytest.approx(quarter, abs=1e-6)


def test_decayed_rate_drives_an_optimiser_and_constant_is_untouched():
  assert schedules.decayed_learning_rate(0.3, "constant", 10) == 0.3
  tx = optim.gda(schedules.decayed_learning_rate(1.0, "linear", 4, 0.0))
  state, steps = tx.init(jnp.zeros(())), []
  for _ in range(5):
    u, state = tx.update(jnp.ones(()), state)
    steps.append(float(u))
  np.testing.assert_allclose(steps, [-1.0, -0.75, -0.5, -0.25, 0.0], atol=1e-7)


def test_decayed_rate_refuses_bad_settings():
  with pytest.raises(InvalidArgumentError, match="schedule='step'"):
    schedules.decayed_learning_rate(1.0, "step", 10)
  with pytest.raises(InvalidArgumentError, match="final_lr_fraction=1.5"):
    schedules.decayed_learning_rate(1.0, "cosine", 10, 1.5)
  assert isinstance(optax.scale_by_learning_rate(schedules.decayed_learning_rate(1.0, "cosine", 10)),
                    optax.GradientTransformation)


def test_annealed_penalty_scales_the_weight_in_value_and_direction():
  """γ_t = γ s_t: the penalty reported and its pull on the energy scale by s_t (docs/theory.md
  (6.10)); at s = 0 the energy's direction is the unpenalised one."""
  from ebm_gan import objectives
  g = game.EBMGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)), entropy=NoEntropy(),
                   penalty=objectives.score_penalty(0.2))
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(2)
  full, d_full = g.value_and_directions(params, x, key)
  scaled, d_scaled = g.value_and_directions(params, x, key, penalty_scale=0.25)
  free, d_free = g.value_and_directions(params, x, key, penalty_scale=0.0)
  # R1 = (γ/2)·mean‖∇U(x_data)‖², by hand with jax.grad of the energy alone.
  u = lambda y: g.energy.apply(params["energy"], y)
  score = jax.vmap(jax.grad(lambda y: u(y[None])[0]))(x)
  r1 = 0.1 * float(jnp.mean(jnp.sum(score**2, -1)))
  assert float(full["penalty"]) == pytest.approx(r1, rel=1e-5)
  assert float(scaled["penalty"]) == pytest.approx(0.25 * r1, rel=1e-5)
  for a, b, c in zip(*(jax.tree.leaves(d["energy"]) for d in (d_full, d_scaled, d_free))):
    np.testing.assert_allclose(b, c + 0.25 * (a - c), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_height_penalty_is_alpha_mean_u_squared_and_pulls_the_output_bias_by_2_alpha_mean_u(alpha):
  """(6.11): the energy's loss gains α·mean U(x_data)², reported as ``height_penalty``. The
  energy's output bias b has ∂U/∂b = 1, so its direction gains exactly 2α·mean U(x_data);
  the generator's direction is unchanged (the penalty sees data only)."""
  g0 = game.EBMGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)), entropy=NoEntropy())
  g = game.EBMGame(g0.energy, g0.generator, entropy=NoEntropy(), height_weight=alpha)
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(2)
  plain, d_plain = g0.value_and_directions(params, x, key)
  held, d_held = g.value_and_directions(params, x, key)
  u = np.asarray(g.energy.apply(params["energy"], x), np.float64)
  assert "height_penalty" not in plain and abs(np.mean(u)) > 1e-2  # (measured 0.18: not vacuous)
  assert float(held["height_penalty"]) == pytest.approx(alpha * np.mean(u**2), rel=1e-5)
  bias = lambda d: float(d["energy"]["params"]["MLP_0"]["Dense_1"]["bias"][0])
  assert bias(d_held) - bias(d_plain) == pytest.approx(2 * alpha * np.mean(u), rel=1e-4, abs=1e-6)
  for a, b in zip(jax.tree.leaves(d_plain["generator"]), jax.tree.leaves(d_held["generator"])):
    np.testing.assert_array_equal(a, b)
