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
