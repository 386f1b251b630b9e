"""The conv players' config fields: each player's own width (model.critic_conv_width,
model.generator_conv_width) and the generator's normalisation (model.generator_normalisation),
checked, counted by the size limits, and built as set."""

import math
import os

import jax
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import limits
from ebm_gan.runner.registry import ConfigError
from tiny_runs import ROOT

STACKED = os.path.join(ROOT, "experiments", "configs", "stacked_digits.py")


def _shapes(*overrides):
  """The built game's parameter shapes on stacked_digits (8×8×3, one halving), by eval_shape."""
  config = cli.resolve_config(STACKED, [o.split("=", 1) for o in overrides])
  exp = cli.build(STACKED, config)[1]
  params = jax.eval_shape(exp.game.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((2, 8, 8, 3), "float32"))
  return config, jax.tree.map(lambda x: x.shape, params)


def _critic(w):
  """ConvEnergy(w) on 8×8×3: conv3×3 3→w, conv4×4 stride 2 w→2w, dense (4·4·2w)→1."""
  return {"NormalisedConv_0": {"kernel": (3, 3, 3, w), "bias": (w,)},
          "NormalisedConv_1": {"kernel": (4, 4, w, 2 * w), "bias": (2 * w,)},
          "NormalisedDense_0": {"kernel": (4 * 4 * 2 * w, 1), "bias": (1,)}}


def _generator(w, latent=16):
  """ConvGenerator(w) to 8×8×3: dense z→4·4·2w, conv3×3 2w→w, conv3×3 w→3."""
  return {"NormalisedDense_0": {"kernel": (latent, 4 * 4 * 2 * w), "bias": (4 * 4 * 2 * w,)},
          "NormalisedConv_0": {"kernel": (3, 3, 2 * w, w), "bias": (w,)},
          "NormalisedConv_1": {"kernel": (3, 3, w, 3), "bias": (3,)}}


@pytest.mark.parametrize("game, critic", [("ebm", "energy"), ("gan", "discriminator")])
def test_each_conv_player_has_the_width_of_its_field(game, critic):
  _, shapes = _shapes(f"game={game}", "model.critic_conv_width=8",
                      "model.generator_conv_width=12")
  assert shapes[critic]["params"] == _critic(8)
  assert shapes["generator"]["params"] == _generator(12)
  # One field set: the other player keeps model.conv_width (16 in stacked_digits.py).
  _, shapes = _shapes(f"game={game}", "model.generator_conv_width=4")
  assert shapes[critic]["params"] == _critic(16)
  assert shapes["generator"]["params"] == _generator(4)


def test_unset_widths_are_conv_width_and_the_limits_count_the_built_parameters():
  config, shapes = _shapes("model.conv_width=6")
  assert config.model.critic_conv_width is None and config.model.generator_conv_width is None
  assert shapes["energy"]["params"] == _critic(6)
  assert shapes["generator"]["params"] == _generator(6)
  # The size limits count the hand-written shapes above: 32 → (9·3·32+32) + (16·32·64+64) +
  # (1024+1) = 34 753; 8 → 16·256+256 + 9·16·8+8 + 9·8·3+3 = 5 731; kNN has no third player.
  assert _count(_critic(32)) + _count(_generator(8)) == 34_753 + 5_731
  assert _limits_count("model.critic_conv_width=32", "model.generator_conv_width=8") == 40_484


def _count(shapes):
  return sum(math.prod(s) for s in jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple)))


def _limits_count(*overrides):
  """What the size limits count for stacked_digits with ``overrides``."""
  config = cli.resolve_config(STACKED, [o.split("=", 1) for o in overrides])
  game = cli.build(STACKED, config)[1].game
  return limits.count(limits.parameter_shapes(game, (8, 8, 3)))


def test_generator_normalisation_group_adds_group_norms_to_the_generator_only():
  """stacked_digits' generator (width 16): GroupNorm of its 4·4·32 dense map and of its 16-channel
  hidden conv (γ and β per channel); the energy is unchanged; the limits count them."""
  config, shapes = _shapes("model.generator_normalisation=group")
  generator = shapes["generator"]["params"]
  assert generator == {**_generator(16), "GroupNorm_0": {"scale": (32,), "bias": (32,)},
                       "GroupNorm_1": {"scale": (16,), "bias": (16,)}}
  assert shapes["energy"]["params"] == _critic(16)
  assert _limits_count("model.generator_normalisation=group") == (
      _count(_critic(16)) + _count(_generator(16)) + 2 * 32 + 2 * 16)
  _, shapes = _shapes()  # the default, 'none': no GroupNorm
  assert shapes["generator"]["params"] == _generator(16)


def test_an_unknown_generator_normalisation_exits_2(capsys):
  status = cli.main(["--config", STACKED, "--config.model.generator_normalisation=batch",
                     "--dry-run"], STACKED)
  assert status == 2
  err = capsys.readouterr().err
  assert "model.generator_normalisation" in err and "'batch'" in err and "group, none" in err, err


@pytest.mark.parametrize("key", ["model.critic_conv_width", "model.generator_conv_width"])
@pytest.mark.parametrize("value, words", [
    ("-3", "=-3 is not allowed; expected a positive integer, or None"),
    ("0", "=0 is not allowed; expected a positive integer, or None"),
    ("wide", "='wide' has the wrong type; expected an integer"),
    ("2.5", "='2.5' has the wrong type; expected an integer"),
])
def test_a_bad_width_exits_2_naming_the_key(key, value, words, capsys):
  status = cli.main(["--config", STACKED, f"--config.{key}={value}", "--dry-run"], STACKED)
  assert status == cli.EXIT_USER_ERROR == 2
  err = capsys.readouterr().err
  assert err.startswith("error:") and f"{key}{words}" in err, err


def test_a_width_in_a_sweep_is_checked_too(capsys):
  status = cli.main(["--config", STACKED, "--sweep", "model.critic_conv_width=8,-1",
                     "--dry-run"], STACKED)
  assert status == 2
  assert "model.critic_conv_width=-1 is not allowed" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["model.critic_conv_width", "model.generator_conv_width"])
def test_an_oversized_player_is_refused_naming_its_own_field(key):
  """10⁵ channels: the energy's 16·w·2w stride-2 kernel alone is 3.2·10¹¹ parameters, the
  generator's 9·2w·w conv 1.8·10¹¹; the limit is 10⁸."""
  with pytest.raises(ConfigError) as info:
    cli.build(STACKED, cli.resolve_config(STACKED, [(key, "100000")]))
  assert str(info.value).startswith(f"{key}=100000 is not allowed here")
  assert "parameters" in str(info.value)
