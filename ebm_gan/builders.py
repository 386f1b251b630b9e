"""Config → objects: validation with user-facing errors, then the game, optimiser and data.

``validate(config)`` checks every field of an experiment config and raises
:class:`~ebm_gan.registry.ConfigError` naming the key, the value and what is
allowed — before anything is traced or compiled. ``build(config)`` then
constructs the pieces.
"""

from __future__ import annotations

import dataclasses

from ebm_gan import entropy as entropy_lib
from ebm_gan import game as game_lib
from ebm_gan import models
from ebm_gan import objectives
from ebm_gan import optim
from ebm_gan import schemes
from ebm_gan.data import toy
from ebm_gan.registry import ConfigError, Registry, check_positive

GAMES = Registry("game")
GAMES.register("ebm", "ebm")
GAMES.register("gan", "gan")


def _check_int(config, key):
  return check_positive(config[key], key, integer=True)


def _check_widths(value, key):
  if isinstance(value, int):
    value = (value,)
  if not isinstance(value, (tuple, list)) or not all(
      isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value):
    raise ConfigError(f"{key}={value!r} is not allowed; expected a tuple of positive integers, "
                      "e.g. (256, 256).")


def validate(config) -> None:
  """Raises ConfigError on the first invalid field of an 'ebm_gan' program config."""
  for key in ("steps", "batch_size", "log_every", "steps_per_dispatch", "eval_samples"):
    _check_int(config, key)
  if not isinstance(config.seed, int) or isinstance(config.seed, bool) or config.seed < 0:
    raise ConfigError(f"seed={config.seed!r} is not allowed; expected an integer >= 0.")
  toy.DATASETS.get(config.dataset, key="dataset")
  kind = GAMES.get(config.game, key="game")
  if kind == "gan":
    objectives.GAN_LOSSES.get(config.gan_loss, key="gan_loss")
  m = config.model
  models.ENERGIES.get(m.energy, key="model.energy")
  models.GENERATORS.get(m.generator, key="model.generator")
  _check_widths(m.energy_hidden, "model.energy_hidden")
  _check_widths(m.generator_hidden, "model.generator_hidden")
  models.ACTIVATIONS.get(m.energy_activation, key="model.energy_activation")
  models.ACTIVATIONS.get(m.generator_activation, key="model.generator_activation")
  check_positive(m.latent_dim, "model.latent_dim", integer=True)
  entropy_lib.from_config(config.entropy)
  if config.penalty.name != "none":
    objectives.PENALTIES.get(config.penalty.name, key="penalty.name")
    check_positive(config.penalty.weight, "penalty.weight")
  o = config.optimizer
  optim.OPTIMIZERS.get(o.name, key="optimizer.name")
  check_positive(o.lr, "optimizer.lr")
  if o.critic_lr is not None:
    check_positive(o.critic_lr, "optimizer.critic_lr")
  schemes.SCHEMES.get(config.scheme, key="scheme")
  _check_int(config, "critic_steps")
  check_positive(config.divergence_bound, "divergence_bound")


def build_game(config):
  """The game of ``config`` (EBMGame or GANGame) for 2-D data."""
  m, data_dim = config.model, 2
  energy = models.ENERGIES.get(m.energy)(m, data_dim)
  generator = models.GENERATORS.get(m.generator)(m, data_dim)
  penalty = None
  if config.penalty.name != "none":
    penalty = objectives.PENALTIES.get(config.penalty.name)(config.penalty.weight)
  if config.game == "gan":
    return game_lib.GANGame(energy, generator, objectives.GAN_LOSSES.get(config.gan_loss),
                            penalty=penalty)
  return game_lib.EBMGame(energy, generator, entropy=entropy_lib.from_config(config.entropy),
                          penalty=penalty)


def build_optimizer(config, players, lr=None, critic_lr=None):
  """Per-player optax transforms: the generator at ``lr``, every other player at ``critic_lr``.

  Defaults come from ``config.optimizer`` (``critic_lr`` None means = lr). The
  rates may be optax schedules, which vectorised sweeps use to trace them.
  """
  o = config.optimizer
  lr = o.lr if lr is None else lr
  if critic_lr is None:
    critic_lr = lr if o.critic_lr is None else o.critic_lr
  return optim.per_player({
      p: optim.make(o.name, lr if p == "generator" else critic_lr, key="optimizer.name")
      for p in players})


@dataclasses.dataclass(frozen=True)
class Experiment:
  """What a config resolves to."""
  game: object
  tx: object
  dataset: object


def build(config) -> Experiment:
  """Validates ``config`` and builds its game, per-player optimiser and dataset."""
  validate(config)
  game = build_game(config)
  return Experiment(game, build_optimizer(config, game.players), toy.get(config.dataset))
