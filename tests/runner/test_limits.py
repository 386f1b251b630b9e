"""Size limits: configs that would obviously exhaust memory or trace for minutes are refused up front."""

import os
import time

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner.programs.ebm_gan import limits
from ebm_gan.runner.programs import toy_games
from ebm_gan.runner.registry import ConfigError
from tiny_runs import CONFIGS, DEFAULT

TOY = os.path.join(CONFIGS, "toy_games.py")


def _build(*overrides, path=DEFAULT):
  c = cli.resolve_config(path, [o.split("=", 1) for o in overrides])
  return cli.build(path, c)


def _measured(*overrides, path=None):
  """(parameters per player, largest activation per sample) the limits measure."""
  exp = _build(*overrides, path=path or DEFAULT)[1]
  game, shape = exp.game, config_lib.data_shape(exp.dataset)
  params = limits.parameter_shapes(game, shape)
  return ({p: limits.count(v) for p, v in params.items()},
          limits.largest_activation(game, params, shape))


def test_mlp_players_are_counted_as_the_closed_form():
  # energy [2, 3, 1]: (2+1)·3 + (3+1)·1 = 13; generator [5, 4, 2]: 6·4 + 5·2 = 34; the widest
  # array one sample passes through a layer: the 5-wide latent.
  sizes, widest = _measured("model.energy_hidden=(3,)", "model.generator_hidden=(4,)",
                            "model.latent_dim=5")
  assert sizes == {"energy": 13, "generator": 34} and widest == 5
  # MEG's statistics network T(x, z) on [2 + 5, 6, 1]: 8·6 + 7·1 = 55 more, a third player.
  sizes, _ = _measured("model.energy_hidden=(3,)", "model.generator_hidden=(4,)",
                       "model.latent_dim=5", "entropy.name=mi", "entropy.mi.hidden=(6,)")
  assert sizes == {"energy": 13, "generator": 34, "statistics": 55}


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


def test_members_with_one_game_share_one_measurement():
  """The toy benchmark's 63 members (7 methods x seeds x rates) build 7 distinct games, so
  the limits trace 7 of them, not 63 (a dry run: 6.8 s before, 0.55 s after); a member with
  another architecture is measured again, and refused on its own numbers."""
  limits._measured.cache_clear()
  bench = os.path.join(CONFIGS, "toy_benchmark.py")
  assert cli.main(["--config", bench, "--dry-run", "--no-progress"], DEFAULT) == cli.EXIT_OK
  assert limits._measured.cache_info().misses == 7
  _build("model.energy_hidden=(5,)")
  assert limits._measured.cache_info().misses == 8
  with pytest.raises(ConfigError, match="model.energy_hidden=\\(20000, 20000\\)"):
    _build("model.energy_hidden=(20000,20000)")


def test_toy_games_smoke_caps_an_explicit_num_steps():
  c = cli.resolve_config(TOY, [("smoke", "true"), ("num_steps", "100000")])
  plan = toy_games.build(c)
  assert c.num_steps == toy_games.SMOKE["num_steps"] == 300, plan


def test_conv_players_are_counted_as_the_closed_form():
  """stacked_digits (8×8×3, width 16, latent 16): the energy conv3×3 3→16 (448), conv4×4
  16→32 stride 2 (8 224), dense 512→1 (513); the generator dense 16→4·4·32 (8 704), conv3×3
  32→16 (4 624), conv3×3 16→3 (435). The widest array: the 8·8·32 map upsampled from 4·4·32
  and fed to the generator's first conv (2 048 per sample), wider than any layer's output."""
  sizes, widest = _measured(path=STACKED)
  assert sizes == {"energy": 448 + 8224 + 513, "generator": 8704 + 4624 + 435}
  assert widest == 8 * 8 * 32


DIGITS = os.path.join(CONFIGS, "digits.py")
STACKED = os.path.join(CONFIGS, "stacked_digits.py")


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
