"""One jax.grad gives every player's own gradient (docs/theory.md §3, §8)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import entropy, game, models, objectives, optim, train


def _ebm_game(entropy_estimator):
  return game.EBMGame(models.MLPEnergy((16, 16)), models.MLPGenerator(2, 3, (16, 16)),
                      entropy=entropy_estimator, penalty=objectives.score_penalty(0.1))


def _assert_trees_close(a, b, rtol=1e-4, atol=1e-5):
  # float32: the fused one-grad program and the hand-written grads sum the
  # same O(1) terms in a different order; differences of ~1e-6 are rounding.
  chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_ebm_directions_equal_separate_per_player_gradients():
  """directions = (−∇_m L1 + ∇_m penalty, −∇_f L2) computed by hand with two jax.grad calls."""
  g = _ebm_game(entropy.KNN(k=2))
  x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(2)
  value, directions = g.value_and_directions(params, x, key)

  # The same randomness as the game: keys split as in EBMGame.losses/sample.
  k_sample, k_pen, _ = jax.random.split(key, 3)
  k_z, _ = jax.random.split(k_sample)
  z = jax.random.normal(k_z, (64, 3))
  x_gen = g.generator.apply(params["generator"], z)
  u = lambda m, y: g.energy.apply(m, y)

  def energy_loss(m):
    pen = objectives.score_penalty(0.1)(lambda y: u(m, y), x, x_gen, k_pen)
    return -objectives.l1(u(m, x), u(m, x_gen)) + pen

  def generator_loss(f):
    xg = g.generator.apply(f, z)
    return -objectives.l2(u(params["energy"], xg), entropy.kozachenko_leonenko(xg, 2))

  _assert_trees_close(directions["energy"], jax.grad(energy_loss)(params["energy"]))
  _assert_trees_close(directions["generator"], jax.grad(generator_loss)(params["generator"]))
  # The value is L3 = L1 − Ĥ (docs/theory.md (3.1)).
  h = entropy.kozachenko_leonenko(x_gen, 2)
  np.testing.assert_allclose(value["l3"], objectives.l1(u(params["energy"], x),
                                                       u(params["energy"], x_gen)) - h, rtol=1e-5)
  np.testing.assert_allclose(value["entropy"], h, rtol=1e-5)


# The default game's three players with small fixed parameters (written out for numpy):
# U(x) = −½‖(x − μ)L‖² (L lower-triangular), G(z) = Az + b, T(x, z) = relu([x, z]W₁ + b₁)W₂ + b₂.
_X_DATA = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5], [0.0, 2.0]])
_MU, _L = np.array([0.2, -0.1]), np.array([[1.2, 0.0], [0.4, 0.8]])
_A, _B = np.array([[0.9, -0.3], [0.2, 1.1]]), np.array([0.3, -0.4])
_W1 = np.array([[0.5, -0.4, 0.3], [0.2, 0.6, -0.5], [-0.7, 0.1, 0.4], [0.3, -0.2, 0.8]])
_B1, _W2, _B2 = np.array([0.1, -0.2, 0.05]), np.array([[0.9], [-1.1], [0.7]]), np.array([0.2])


def _softplus(v):
  return np.logaddexp(0.0, v)


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_the_mi_games_values_are_the_hand_written_ones(sigma):
  """EBMGame with the MutualInformation estimator (players energy, generator, statistics),
  the default's R1 penalty (γ = 0.03) and height penalty (α = 0.1), no MALA negatives. With z
  and ε drawn from the game's keys (split as in EBMGame.losses/_draw), by hand in float64:

    l1 = mean U(x_data) − mean U(x_gen),  x_gen = G(z) + σε
    loss_energy = −l1 + (γ/2)·mean ‖∇_x U(x_data)‖² + α·mean U(x_data)²,  ∇_x U = −(x − μ)LLᵀ
    mi_jsd = mean −sp(−T(x_i, z_i)) − mean sp(T(x_i, z_{i−1})),  mi_dv = mean T(x_i, z_i) −
      log mean exp T(x_i, z_{i−1})  (docs/theory.md §4; sp = softplus)
    loss_statistics = −mi_jsd,  loss_generator = −(mean U(x_gen) + mi_dv + ½·d·log 2πeσ²)

  (the last term only for σ > 0). Measured largest |difference| over the six values 2.4e-7
  (σ = 0) and 2.2e-7 (σ = 0.3), float32 rounding; bound 5e-7."""
  est = entropy.MutualInformation(sigma=sigma, hidden=(3,))
  g = game.EBMGame(models.QuadraticEnergy(2), models.AffineGenerator(2, 2), entropy=est,
                   penalty=objectives.score_penalty(0.03), height_weight=0.1)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  params = g.init(jax.random.PRNGKey(0), f32(_X_DATA))
  params["energy"]["params"].update(mu=f32(_MU), L=f32(_L))
  params["generator"]["params"].update(A=f32(_A), b=f32(_B))
  params["statistics"]["params"]["MLP_0"] = {
      "Dense_0": {"kernel": f32(_W1), "bias": f32(_B1)},
      "Dense_1": {"kernel": f32(_W2), "bias": f32(_B2)}}
  key = jax.random.PRNGKey(5)
  value, _ = g.value_and_directions(params, f32(_X_DATA), key)

  k_z, k_x = jax.random.split(jax.random.split(key, 3)[0])
  z = np.asarray(jax.random.normal(k_z, (4, 2)), np.float64)
  x_gen = z @ _A.T + _B + sigma * np.asarray(jax.random.normal(k_x, (4, 2)), np.float64)
  u = lambda x: -0.5 * np.sum(((x - _MU) @ _L) ** 2, axis=1)
  grad_u = -((_X_DATA - _MU) @ _L) @ _L.T
  t = lambda x, zz: (np.maximum(np.concatenate([x, zz], 1) @ _W1 + _B1, 0.0) @ _W2 + _B2)[:, 0]
  t_joint, t_marginal = t(x_gen, z), t(x_gen, np.roll(z, 1, axis=0))
  l1 = u(_X_DATA).mean() - u(x_gen).mean()
  mi_jsd = np.mean(-_softplus(-t_joint)) - np.mean(_softplus(t_marginal))
  mi_dv = np.mean(t_joint) - np.log(np.mean(np.exp(t_marginal)))
  h_given_z = math.log(2 * math.pi * math.e * sigma**2) if sigma else 0.0  # ½·d·log(2πeσ²), d = 2
  expected = {
      "l1": l1, "mi_jsd": mi_jsd, "mi_dv": mi_dv, "loss_statistics": -mi_jsd,
      "loss_energy": (-l1 + 0.015 * np.mean(np.sum(grad_u**2, 1))
                      + 0.1 * np.mean(u(_X_DATA) ** 2)),
      "loss_generator": -(u(x_gen).mean() + mi_dv + h_given_z)}
  got = {k: float(value[k]) for k in expected}
  assert max(abs(got[k] - expected[k]) for k in expected) < 5e-7, (got, expected)


def test_three_player_game():
  """ℓ_a = a·b·c + a², ℓ_b = −a·b·c + b², ℓ_c = (c − a)²: one grad = three separate grads."""
  losses = {"a": lambda p: p["a"] * p["b"] * p["c"] + p["a"] ** 2,
            "b": lambda p: -p["a"] * p["b"] * p["c"] + p["b"] ** 2,
            "c": lambda p: (p["c"] - p["a"]) ** 2}
  params = {"a": jnp.array(0.7), "b": jnp.array(-1.3), "c": jnp.array(2.1)}
  values, directions, _ = game.joint_directions(losses, params)
  a, b, c = 0.7, -1.3, 2.1
  np.testing.assert_allclose(directions["a"], b * c + 2 * a, rtol=1e-6)   # ∂ℓ_a/∂a
  np.testing.assert_allclose(directions["b"], -a * c + 2 * b, rtol=1e-6)  # ∂ℓ_b/∂b
  np.testing.assert_allclose(directions["c"], 2 * (c - a), rtol=1e-6)     # ∂ℓ_c/∂c
  np.testing.assert_allclose(values["c"], (c - a) ** 2, rtol=1e-6)
  # The plain gradient of the summed losses would differ: the stop_gradient matters.
  naive = jax.grad(lambda p: sum(l(p) for l in losses.values()))(params)
  # (for b it adds ∂ℓ_a/∂b = a·c = 1.47).
  assert abs(float(naive["b"] - directions["b"])) > 1.0


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_gan_game_directions():
  """Non-saturating GAN: d_D = ∇ loss_D, d_G = ∇ E[softplus(−D(G(z)))] by hand."""
  g = game.GANGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)),
                   objectives.GAN_LOSSES.get("non_saturating"))
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(3)
  _, directions = g.value_and_directions(params, x, key)
  k_sample, _ = jax.random.split(key)
  z = jax.random.normal(k_sample, (32, 2))
  d = lambda p, y: g.discriminator.apply(p, y)
  xg = g.generator.apply(params["generator"], z)
  gd = jax.grad(lambda p: objectives.minimax_discriminator_loss(d(p, x), d(p, xg)))
  gg = jax.grad(lambda f: objectives.non_saturating_generator_loss(
      d(params["discriminator"], g.generator.apply(f, z))))
  _assert_trees_close(directions["discriminator"], gd(params["discriminator"]))
  _assert_trees_close(directions["generator"], gg(params["generator"]))


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_value_and_directions_composes_inside_user_jit():
  """Users call the jitted objective inside their own jax.jit and apply optax."""
  g = _ebm_game(entropy.NoEntropy())
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  tx = optim.gda(0.1)
  opt = {p: tx.init(params[p]) for p in g.players}

  @jax.jit
  def user_step(params, opt, key):
    value, d = g.value_and_directions(params, x, key)
    new = {}
    for p in g.players:
      upd, opt[p] = tx.update(d[p], opt[p])
      new[p] = jax.tree.map(lambda a, b: a + b, params[p], upd)
    return new, opt, value

  new, _, _ = user_step(params, dict(opt), jax.random.PRNGKey(2))
  _, d = g.value_and_directions(params, x, jax.random.PRNGKey(2))
  _assert_trees_close(new["energy"],
                      jax.tree.map(lambda a, b: a - 0.1 * b, params["energy"], d["energy"]))


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_train_step_is_deterministic_and_moves_each_player_along_its_direction():
  """One simultaneous GDA step: θ_i ← θ_i − η d_i for both players, same key → same result."""
  g = _ebm_game(entropy.KNN())
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  state = train.init_state(g, optim.gda(0.05), jax.random.PRNGKey(1), x)
  step = jax.jit(train.make_train_step(g, optim.gda(0.05)))
  new, metrics = step(state, x)
  again, _ = step(state, x)
  _assert_trees_close(new.params, again.params, rtol=0, atol=0)
  key = jax.random.fold_in(jax.random.fold_in(state.key, 0), 0)
  _, d = g.value_and_directions(state.params, x, key)
  expect = jax.tree.map(lambda p, q: p - 0.05 * q, state.params, d)
  _assert_trees_close(new.params, expect)
  assert int(new.step) == 1
  for name in ("l1", "l3", "entropy", "grad_norm/energy", "update_norm/generator"):
    assert np.isfinite(metrics[name])


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_the_training_chunk_compiles_once():
  """A jitted ``make_chunk`` is traced once, however many chunks run (no retrace per call)."""
  g = _ebm_game(entropy.KNN())
  sample = lambda key, n: jax.random.normal(key, (n, 2))
  state = train.init_state(g, optim.ogda(1e-3), jax.random.PRNGKey(1), sample(jax.random.PRNGKey(0), 16))
  chunk = train.make_chunk(train.make_train_step(g, optim.ogda(1e-3)), 3, sample, 16)
  chunk = jax.jit(chex.assert_max_traces(chunk, n=1))
  for _ in range(3):
    state, metrics = chunk(state)
  assert int(state.step) == 9 and metrics["l3"].shape == (3,)
