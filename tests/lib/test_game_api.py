"""The library's game API: per-player losses a user differentiates, games as values, any
flax generator, and the protocol the runner relies on (issue 28)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from ebm_gan import entropy, game, models, objectives
from ebm_gan.errors import InvalidArgumentError


def _ebm(estimator=None, latent_dim=None, generator=None):
  return game.EBMGame(models.MLPEnergy((16,)),
                      generator or models.MLPGenerator(2, 3, (16,)),
                      entropy=estimator or entropy.KNN(k=1),
                      penalty=objectives.score_penalty(0.1), latent_dim=latent_dim)


GAMES = {
    "ebm-knn": lambda: _ebm(),
    "ebm-mi (3 players)": lambda: _ebm(entropy.MutualInformation(hidden=(8,))),
    "gan": lambda: game.GANGame(models.MLPEnergy((16,)), models.MLPGenerator(2, 3, (16,)),
                                penalty=objectives.score_penalty(0.1)),
}


@pytest.mark.slow  # 5.3 s (each case) of the fast subset's 157 s; it stays under 2 min
@pytest.mark.parametrize("name", GAMES)
def test_each_players_loss_differentiated_alone_gives_the_one_grad_direction(name):
  """jax.grad of player p's (params, batch, key) -> (loss, aux), restricted to p, equals
  value_and_directions' p-direction (one grad of the stop-gradient sum); the losses' values
  equal value's loss_<p>. Measured: max |difference| 3e-8 (float32 reordering); bound 1e-5."""
  g = GAMES[name]()
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(2)
  value, directions = g.value_and_directions(params, x, key)
  assert set(g.player_losses()) == set(g.players)
  for player, loss in g.player_losses().items():
    grads, (loss_value, _) = jax.jit(jax.grad(lambda p, b, k: _with_value(loss(p, b, k)),
                                              has_aux=True))(params, x, key)
    chex.assert_trees_all_close(grads[player], directions[player], atol=1e-5, rtol=1e-4)
    assert abs(float(loss_value) - float(value[f"loss_{player}"])) < 1e-5


def _with_value(out):
  loss, aux = out
  return loss, (loss, aux)


@pytest.mark.slow  # 4.3 s (each case) of the fast subset's 157 s; it stays under 2 min
def test_a_term_added_to_one_players_loss_moves_that_player_alone():
  """L2 plus ½‖θ_f‖² (weight decay a user adds): the generator's gradient grows by θ_f
  exactly, and it is still a plain function of (params, batch, key)."""
  g = _ebm()
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  key = jax.random.PRNGKey(2)
  base = g.player_losses()["generator"]
  decayed = lambda p, b, k: base(p, b, k)[0] + 0.5 * sum(
      jnp.sum(w * w) for w in jax.tree.leaves(p["generator"]))
  plain = jax.grad(lambda p: base(p, x, key)[0])(params)["generator"]
  extra = jax.grad(decayed)(params, x, key)["generator"]
  chex.assert_trees_all_close(jax.tree.map(lambda a, b: a - b, extra, plain),
                              params["generator"], atol=1e-6)


def test_games_with_equal_settings_are_equal_and_compile_once():
  """Two games built separately with the same settings: equal, same hash, and the jitted
  directions are traced and compiled once for both (the cache grows by one entry)."""
  a, b = _ebm(), _ebm()
  assert a is not b and a == b and hash(a) == hash(b)
  assert a != _ebm(entropy.KNN(k=2))
  assert objectives.score_penalty(0.1) == objectives.score_penalty(0.1)
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  params = a.init(jax.random.PRNGKey(1), x)
  jitted = game._value_and_directions  # pylint: disable=protected-access
  before = jitted._cache_size()  # pylint: disable=protected-access
  a.value_and_directions(params, x, jax.random.PRNGKey(2))
  b.value_and_directions(params, x, jax.random.PRNGKey(3))
  assert jitted._cache_size() == before + 1  # pylint: disable=protected-access


class PlainGenerator(nn.Module):
  """A generator with no latent_dim attribute: z[B, 4] -> x[B, 2]."""

  @nn.compact
  def __call__(self, z):
    return nn.Dense(2)(nn.relu(nn.Dense(8)(z)))


def test_any_flax_generator_works_when_the_game_is_given_the_latent_size():
  g = _ebm(latent_dim=4, generator=PlainGenerator())
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  params = g.init(jax.random.PRNGKey(1), x)
  assert params["generator"]["params"]["Dense_1"]["kernel"].shape == (4, 8)  # z is 4-D
  samples, z = g.sample(params, jax.random.PRNGKey(2), 5)
  assert samples.shape == (5, 2) and z.shape == (5, 4)
  with pytest.raises(InvalidArgumentError, match="latent_dim"):
    _ebm(generator=PlainGenerator())
  assert _ebm().latent_dim == 3  # taken from MLPGenerator's own attribute


def test_the_runner_tells_an_energy_from_a_logit_by_the_protocol():
  ebm, gan = GAMES["ebm-knn"](), GAMES["gan"]()
  assert ebm.has_energy and not gan.has_energy
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
  for g in (ebm, gan):
    params = g.init(jax.random.PRNGKey(1), x)
    critic = g.players[0]  # energy / discriminator
    want = getattr(g, critic).apply(params[critic], x)
    chex.assert_trees_all_close(g.critic_fn(params)(x), want)


class _OnlyDirections:
  """A user's game with the train step's members alone: no init, losses, sample, critic_fn."""
  players, critics = ("x", "y"), ("y",)

  def value_and_directions(self, params, batch, key):
    return {}, {"x": params["x"], "y": -params["y"]}


def test_a_game_lacking_a_protocol_member_is_named_at_the_entry_point():
  from ebm_gan import optim, train  # pylint: disable=g-import-not-at-top
  g, tx = _OnlyDirections(), optim.gda(0.1)
  train.make_train_step(g, tx)  # what the step uses is there: accepted
  with pytest.raises(TypeError, match=r"_OnlyDirections lacks init\(\), needed by "
                                      r"ebm_gan\.train\.init_state\. A game"):
    train.init_state(g, tx, jax.random.PRNGKey(0), jnp.zeros((4, 2)))
  with pytest.raises(TypeError, match=r"lacks losses\(\), needed by ebm_gan\.player_losses"):
    game.player_losses(g)
  with pytest.raises(TypeError, match=r"lacks latent_dim, has_energy, init\(\), sample\(\), "
                                      r"critic_fn\(\), losses\(\), summarise\(\)\. A game"):
    game.check_game(g)
  no_step = type("NoStep", (), {"players": ("x",), "critics": ()})()
  with pytest.raises(TypeError, match=r"NoStep lacks value_and_directions\(\), needed by "
                                      r"ebm_gan\.train\.make_train_step"):
    train.make_train_step(no_step, tx)
