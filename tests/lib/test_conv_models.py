"""Conv energy and generator for images; exact stateless spectral normalisation (docs/theory.md §10)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import entropy, game, models, objectives
from ebm_gan.errors import InvalidArgumentError
from ebm_gan.models import conv

# Kernels seen as matrices W[fan_in, out]: a tall conv kernel, a wide one, a dense one.
KERNEL_SHAPES = [(4, 4, 8, 16), (3, 3, 2, 40), (100, 1), (6, 50)]


@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_spectral_norm_is_numpys_largest_singular_value(shape):
  """σ_max(W) and σ_max(W/σ_max(W)) = 1 against numpy's SVD of the reshaped kernel."""
  k = jax.random.normal(jax.random.PRNGKey(sum(shape)), shape)
  w = np.asarray(k, np.float64).reshape(-1, shape[-1])
  sigma = np.linalg.svd(w, compute_uv=False)[0]
  # Measured: relative errors ≤ 3.1e-7 (float32 eigh of the Gram matrix); asserted 1e-6.
  np.testing.assert_allclose(float(models.spectral_norm(k)), sigma, rtol=1e-6)
  normalised = np.asarray(models.spectral_normalise(k), np.float64).reshape(w.shape)
  np.testing.assert_allclose(np.linalg.svd(normalised, compute_uv=False)[0], 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 3, 4, 6), (5, 30)])
def test_spectral_norm_gradient_is_u_v_transpose(shape):
  """∂σ_max/∂W = u vᵀ (top singular vectors), although the vector comes from a stopped eigh."""
  k = jax.random.normal(jax.random.PRNGKey(7), shape)
  w = np.asarray(k, np.float64).reshape(-1, shape[-1])
  u, _, vt = np.linalg.svd(w)
  grad = np.asarray(jax.grad(models.spectral_norm)(k)).reshape(w.shape)
  # Measured: max |error| 5.7e-7 (entries are O(0.3)); asserted 1.5e-6.
  np.testing.assert_allclose(grad, np.outer(u[:, 0], vt[0]), atol=1.5e-6)


SIZES = [(8, 1), (8, 3), (28, 1), (28, 3), (32, 1), (32, 3)]


def _players(side, channels, normalisation):
  return (models.ConvEnergy(width=4, normalisation=normalisation),
          models.ConvGenerator((side, side, channels), latent_dim=3, width=4,
                               normalisation=normalisation))


@pytest.mark.parametrize("normalisation", models.NORMALISATIONS)
@pytest.mark.parametrize("side,channels", SIZES)
def test_shapes(side, channels, normalisation):
  """z[B, k] → x[B, H, W, C] → U[B], traced without compiling (jax.eval_shape)."""
  energy, generator = _players(side, channels, normalisation)

  def forward(key, z):
    x = generator.apply(generator.init(key, z), z)
    return x, energy.apply(energy.init(key, x), x)
  x, u = jax.eval_shape(forward, jax.random.PRNGKey(0), jnp.zeros((5, 3)))
  assert x.shape == (5, side, side, channels) and u.shape == (5,)


@pytest.mark.slow  # ~24 CPU-s: compiling a conv player's init (its random kernels) dominates
@pytest.mark.parametrize("side,channels,normalisation", [(8, 3, "none"), (8, 1, "spectral")])
def test_generator_range_and_energy_values(side, channels, normalisation):
  """G(z) ∈ [−1, 1] even for huge latents (tanh saturates); U finite, one scalar per sample."""
  energy, generator = _players(side, channels, normalisation)

  @jax.jit
  def forward(key, z):
    x = generator.apply(generator.init(key, z), z)
    return x, energy.apply(energy.init(key, x), x)
  x, u = forward(jax.random.PRNGKey(1), 100.0 * jax.random.normal(jax.random.PRNGKey(0), (5, 3)))
  assert x.shape == (5, side, side, channels) and u.shape == (5,)
  assert float(jnp.max(jnp.abs(x))) <= 1.0 and float(jnp.max(jnp.abs(x))) > 0.5
  assert bool(jnp.all(jnp.isfinite(u)))


@pytest.mark.slow  # ~15 CPU-s, the init's compilation
def test_spectral_layers_have_unit_norm_kernels():
  """Every kernel the spectral energy uses has σ_max = 1 (its parameters stay raw)."""
  x = jnp.zeros((2, 8, 8, 1))
  params = jax.jit(models.ConvEnergy(width=4, normalisation="spectral").init)(
      jax.random.PRNGKey(0), x)
  kernels = [v["kernel"] for v in params["params"].values()]
  assert len(kernels) == 3
  for k in kernels:
    w = np.asarray(models.spectral_normalise(k)).reshape(-1, k.shape[-1])
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False)[0], 1.0, rtol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: models.ConvGenerator((8, 6, 1), 2),
    lambda: models.ConvGenerator((2, 2, 1), 2),
    lambda: models.ConvGenerator((8, 8, 1), 2, normalisation="batch"),
])
def test_bad_generator_arguments_are_refused(build):
  with pytest.raises(InvalidArgumentError, match="image_shape|normalisation"):
    build().init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))


def test_energy_refuses_flat_input():
  with pytest.raises(InvalidArgumentError, match=r"x\[B, H, W, C\]"):
    models.ConvEnergy(4).init(jax.random.PRNGKey(0), jnp.zeros((2, 64)))


def _image_game(estimator, normalisation="spectral"):
  return game.EBMGame(models.ConvEnergy(4, normalisation),
                      models.ConvGenerator((8, 8, 1), 3, 4, normalisation),
                      entropy=estimator, penalty=objectives.score_penalty(0.1))


def _check_directions(g):
  """Finite, non-zero directions for every player; returns (value, params, data)."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (8, 8, 8, 1), minval=-1.0, maxval=1.0)
  params = jax.jit(g.init)(jax.random.PRNGKey(1), x)
  value, directions = g.value_and_directions(params, x, jax.random.PRNGKey(2))
  assert jax.tree.structure(directions) == jax.tree.structure(params)
  for leaf in jax.tree.leaves(directions):
    assert bool(jnp.all(jnp.isfinite(leaf)))
  for player in g.players:
    assert float(sum(jnp.sum(jnp.abs(l)) for l in jax.tree.leaves(directions[player]))) > 0
  return value, params


@pytest.mark.slow  # ~37 CPU-s: init and the game's one-grad program with the R1 double backward
def test_conv_players_in_the_ebm_game_with_knn():
  """One jitted value_and_directions on 8×8×1 images; Ĥ is the kNN estimate of the flat samples."""
  g = _image_game(entropy.KNN(k=1))
  value, params = _check_directions(g)
  # The game's samples: keys split as in EBMGame.losses (k_sample first).
  x_gen, _ = g.sample(params, jax.random.split(jax.random.PRNGKey(2), 3)[0], 8)
  np.testing.assert_allclose(value["entropy"],
                             entropy.kozachenko_leonenko(x_gen.reshape(8, -1), 1), rtol=1e-5)


@pytest.mark.slow  # compiles three image games (> 10 s on the loaded 2-core machine)
@pytest.mark.parametrize("estimator", [
    entropy.MutualInformation(hidden=(16,)),
    entropy.NoisyGenerator(sigma=0.1, proposal_hidden=(16,)),
    entropy.NoisyGenerator(posterior="mala", mala_steps=2, learn_sigma=True),
])
def test_conv_players_with_the_other_estimators(estimator):
  """MI (T(x, z) on flattened x) and the noisy generator (IS, MALA) accept image samples."""
  _check_directions(_image_game(estimator, "none"))


def test_flat_lecun_normal_is_lecun_normal_drawn_flat():
  """A 3×3×64×128 kernel: fan_in 576, so the std is 1/√576 = 0.041667 (flax's truncated normal
  is rescaled to that variance); measured 0.041672 on 73 728 draws (standard error 1e-4), and
  |x| ≤ 2·0.041667/0.8796 = 0.09474. With jax's partitionable threefry the numbers are
  flax's own (measured max |Δ| 3e-8: the same draw, scaled in another order)."""
  key, shape = jax.random.PRNGKey(5), (3, 3, 64, 128)
  w = np.asarray(conv.flat_lecun_normal(key, shape), np.float64)
  assert w.shape == shape
  assert abs(w.std() - 1 / 24) < 4e-4 and abs(w.mean()) < 4e-4, (w.std(), w.mean())
  assert np.abs(w).max() <= 2 / 24 / 0.87962566103423978 + 1e-7
  if jax.config.jax_threefry_partitionable:
    np.testing.assert_allclose(w, nn.initializers.lecun_normal()(key, shape), atol=1e-7)


def test_default_generator_is_unchanged_by_the_feature_normalisation_option():
  """ConvGenerator((8, 8, 3), 3, 4) with the default feature_normalisation='none': the same
  parameter tree and the same outputs as before the option existed (values measured with the
  code of commit 83fb2e7, same keys; they agree to the last bit, asserted to 1e-6)."""
  g = models.ConvGenerator((8, 8, 3), 3, 4)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
  params = g.init(jax.random.PRNGKey(0), z)
  assert jax.tree.map(lambda a: a.shape, params) == {"params": {
      "NormalisedDense_0": {"kernel": (3, 128), "bias": (128,)},
      "NormalisedConv_0": {"kernel": (3, 3, 8, 4), "bias": (4,)},
      "NormalisedConv_1": {"kernel": (3, 3, 4, 3), "bias": (3,)}}}
  x = np.asarray(g.apply(params, z), np.float64)
  np.testing.assert_allclose(x[0, 0, 0], [-0.055438444, 0.0570518, -0.002117367], atol=1e-6)
  np.testing.assert_allclose(x[1, 7, 7], [-0.34338668, 0.213018879, -0.316461682], atol=1e-6)
  np.testing.assert_allclose(np.abs(x).sum(), 59.54219191977063, rtol=1e-6)


def test_group_count_divides_the_channels():
  assert [conv.group_count(c, 8) for c in (32, 16, 24, 12, 8, 6, 3)] == [8, 8, 8, 4, 8, 2, 1]


def _group_statistics(h, groups):
  """Per sample and group: the mean and variance over positions and the group's channels."""
  b, y, x, c = h.shape
  g = np.asarray(h, np.float64).reshape(b, y * x, groups, c // groups)
  return g.mean(axis=(1, 3)), g.var(axis=(1, 3))


def test_group_normalised_generator_normalises_each_group_of_each_sample():
  """feature_normalisation='group', 8×8×3, width 12: the dense map has 24 channels (G =
  gcd(24, 8) = 8 groups of 3), the hidden conv 12 (G = 4 groups of 3); the output conv is not
  normalised. With γ, β drawn at random, each GroupNorm's output is γ_c (h − μ_bg)/√(σ²_bg + ε)
  + β_c of its input h (closed form, float64): measured max |error| 9.7e-7 on values up to 7.5,
  asserted 2e-6; so (y − β)/γ has, per sample and group, mean 0 (measured |·| ≤ 1.5e-7,
  asserted 3e-7) and variance σ²_bg/(σ²_bg + ε), 1 − 4.6e-6 for the smallest σ²_bg = 0.22
  (measured |error| ≤ 5.1e-7 against it, asserted 1e-6)."""
  g = models.ConvGenerator((8, 8, 3), 5, 12, feature_normalisation="group")
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  params = g.init(jax.random.PRNGKey(0), z)["params"]
  shapes = jax.tree.map(lambda a: a.shape, params)
  assert shapes["GroupNorm_0"] == {"scale": (24,), "bias": (24,)}
  assert shapes["GroupNorm_1"] == {"scale": (12,), "bias": (12,)}
  assert len(shapes) == 5  # dense, two convs, two group norms: none after the output conv
  for name, k in (("GroupNorm_0", 2), ("GroupNorm_1", 3)):
    kg, kb = jax.random.split(jax.random.PRNGKey(k))
    c = params[name]["scale"].shape[0]
    params[name] = {"scale": 0.5 + jax.random.uniform(kg, (c,)),
                    "bias": jax.random.normal(kb, (c,))}
  _, seen = g.apply({"params": params}, z, capture_intermediates=True)
  seen = seen["intermediates"]
  inputs = {"GroupNorm_0": seen["NormalisedDense_0"]["__call__"][0].reshape(4, 4, 4, 24),
            "GroupNorm_1": seen["NormalisedConv_0"]["__call__"][0]}
  for name, groups in (("GroupNorm_0", 8), ("GroupNorm_1", 4)):
    h, y = inputs[name], np.asarray(seen[name]["__call__"][0], np.float64)
    gamma, beta = (np.asarray(params[name][k], np.float64) for k in ("scale", "bias"))
    mean, var = _group_statistics(h, groups)
    per = h.shape[-1] // groups
    mu = np.repeat(mean, per, axis=1)[:, None, None, :]
    sd = np.sqrt(np.repeat(var, per, axis=1) + 1e-6)[:, None, None, :]
    np.testing.assert_allclose(y, gamma * (np.asarray(h, np.float64) - mu) / sd + beta, atol=2e-6)
    mean_y, var_y = _group_statistics((y - beta) / gamma, groups)
    assert np.abs(mean_y).max() < 3e-7, mean_y
    np.testing.assert_allclose(var_y, var / (var + 1e-6), atol=1e-6)
  x = g.apply({"params": params}, z)
  assert x.shape == (4, 8, 8, 3) and float(jnp.max(jnp.abs(x))) <= 1.0


def test_group_normalised_generator_is_per_sample():
  """No batch statistics: a sample's image is the same alone as in a batch (measured max
  |Δ| 0 here; asserted 1e-6 for other backends' batched kernels), unlike batch normalisation."""
  g = models.ConvGenerator((8, 8, 1), 3, 4, feature_normalisation="group")
  z = jax.random.normal(jax.random.PRNGKey(3), (6, 3))
  params = g.init(jax.random.PRNGKey(0), z)
  np.testing.assert_allclose(g.apply(params, z[2:3])[0], g.apply(params, z)[2], atol=1e-6)


def test_an_unknown_feature_normalisation_is_refused():
  with pytest.raises(InvalidArgumentError, match="feature_normalisation='batch'.*none, group"):
    models.ConvGenerator((8, 8, 1), 2, feature_normalisation="batch").init(
        jax.random.PRNGKey(0), jnp.zeros((1, 2)))
