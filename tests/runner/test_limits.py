"""Size limits: configs that would obviously exhaust memory or trace for minutes are refused up front."""

import os
import time

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import limits
from ebm_gan.runner.programs import toy_games
from ebm_gan.runner.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "experiments", "configs", "default.py")
TOY = os.path.join(ROOT, "experiments", "configs", "toy_games.py")


def _build(*overrides, path=DEFAULT):
  c = cli.resolve_config(path, [o.split("=", 1) for o in overrides])
  return cli.build(path, c)


def test_mlp_parameters_closed_form():
  # [2, 3, 1]: (2+1)*3 + (3+1)*1 = 13; the default energy [2, 256, 256, 256, 1]: 132 609.
  assert limits.mlp_parameters([2, 3, 1]) == 13
  assert limits.mlp_parameters([2, 256, 256, 256, 1]) == 3 * 256 + 2 * 257 * 256 + 257


def test_the_default_config_is_within_every_limit():
  _build()
  _build("entropy.name=noisy")
  _build("model.generator=flow", "entropy.name=flow", "model.latent_dim=2")


@pytest.mark.parametrize("overrides, words", [
    # the 10⁶-wide energy's 4·10⁶ + 1 and the 256×3 generator's 1.3·10⁵
    (["model.energy_hidden=(1000000,)"], ["model.energy_hidden=(1000000,)", "4.13e+06 parameters",
                                          "EBM_GAN_MAX_PARAMETERS"]),
    (["model.generator_hidden=(20000,20000)"], ["model.generator_hidden=(20000, 20000)",
                                                "4e+08 parameters"]),
    (["batch_size=2000000", "model.energy_hidden=(256,)"],
     ["batch_size=2000000", "float32 elements", "EBM_GAN_MAX_ACTIVATIONS"]),
    (["critic_steps=100000", "scheme=alternating"], ["critic_steps=100000", "1e+03",
                                                     "EBM_GAN_MAX_CRITIC_STEPS"]),
])
def test_oversized_configs_are_refused_before_anything_is_traced(overrides, words, monkeypatch):
  monkeypatch.setenv("EBM_GAN_MAX_PARAMETERS", "1000000")  # 4e6 > 1e6; the default is 1e8
  if "generator" in overrides[0]:
    monkeypatch.delenv("EBM_GAN_MAX_PARAMETERS")
  t = time.perf_counter()
  with pytest.raises(ConfigError) as info:
    _build(*overrides)
  assert time.perf_counter() - t < 5  # it is refused from the fields, not after tracing
  for w in words:
    assert w in str(info.value), str(info.value)


def test_a_raised_limit_lets_the_config_through(monkeypatch):
  monkeypatch.setenv("EBM_GAN_MAX_CRITIC_STEPS", "2000")
  _build("critic_steps=1500", "scheme=alternating")
  monkeypatch.setenv("EBM_GAN_MAX_CRITIC_STEPS", "lots")
  with pytest.raises(ConfigError, match="EBM_GAN_MAX_CRITIC_STEPS='lots'"):
    _build()


def test_a_million_wide_layer_exits_2_with_one_paragraph(capsys):
  argv = ["--config.model.energy_hidden=(1000000,)", "--config.model.generator_hidden=(100000,100000)",
          "--dry-run"]
  assert cli.main(argv, DEFAULT) == cli.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert err.startswith("error: model.generator_hidden=(100000, 100000) is not allowed")
  assert err.count("\n") == 1


def test_toy_games_smoke_caps_an_explicit_num_steps():
  c = cli.resolve_config(TOY, [("smoke", "true"), ("num_steps", "100000")])
  plan = toy_games.build(c)
  assert c.num_steps == toy_games.SMOKE["num_steps"] == 300, plan


@pytest.mark.parametrize("shape, width, latent", [((8, 8, 1), 3, 5), ((8, 8, 3), 2, 4),
                                                  ((28, 28, 1), 2, 3), ((32, 32, 3), 4, 2),
                                                  ((4, 4, 1), 2, 2)])
@pytest.mark.parametrize("group_norm", [False, True])
def test_conv_parameter_counts_are_exact(shape, width, latent, group_norm):
  """The closed-form counts equal the parameters Flax initialises for the conv players (the
  generator with its hidden maps group-normalised or not)."""
  import jax  # pylint: disable=g-import-not-at-top
  from ebm_gan import models  # pylint: disable=g-import-not-at-top
  size = lambda tree: sum(x.size for x in jax.tree_util.tree_leaves(tree))
  energy = jax.eval_shape(models.ConvEnergy(width).init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, *shape), "float32"))
  feature = "group" if group_norm else "none"
  generator = jax.eval_shape(
      models.ConvGenerator(shape, latent, width, feature_normalisation=feature).init,
      jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, latent), "float32"))
  assert sum(p for p, _ in limits.conv_energy_layers(shape, width)) == size(energy)
  layers = limits.conv_generator_layers(shape, latent, width, group_norm)
  assert sum(p for p, _ in layers) == size(generator)


DIGITS = os.path.join(ROOT, "experiments", "configs", "digits.py")
STACKED = os.path.join(ROOT, "experiments", "configs", "stacked_digits.py")


@pytest.mark.parametrize("path", [DEFAULT, DIGITS, STACKED])
def test_the_estimate_is_the_games_parameter_count(path):
  """MLP players (the default), conv players and MEG's statistics network on images (digits,
  stacked digits): the estimate is the count of every parameter the built game initialises."""
  import jax  # pylint: disable=g-import-not-at-top
  from ebm_gan.runner.programs.ebm_gan import config as config_lib  # pylint: disable=g-import-not-at-top
  config = cli.resolve_config(path, [])
  exp = cli.build(path, config)[1]
  shape = config_lib.data_shape(exp.dataset)
  params = jax.eval_shape(exp.game.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((2, *shape), "float32"))
  count = sum(x.size for x in jax.tree_util.tree_leaves(params))
  assert sum(p for _, p, _ in limits._networks(config, shape)) == count  # pylint: disable=protected-access


@pytest.mark.parametrize("overrides, words", [
    # 8×8 digits, one halving: the energy's 16·w·2w kernel alone is 3.2e11 at w = 10⁵
    (["model.conv_width=100000"], ["model.conv_width=100000", "parameters"]),
    (["model.latent_dim=10000000"], ["model.latent_dim=10000000", "parameters"]),
    # the generator's upsampled map: 8·8·2w floats per sample
    (["batch_size=10000000"], ["batch_size=10000000", "float32 elements"]),
])
def test_oversized_conv_players_are_refused(overrides, words):
  t = time.perf_counter()
  with pytest.raises(ConfigError) as info:
    _build(*overrides, path=DIGITS)
  assert time.perf_counter() - t < 5
  for w in words:
    assert w in str(info.value), str(info.value)
  _build(path=DIGITS)  # the config as shipped fits
