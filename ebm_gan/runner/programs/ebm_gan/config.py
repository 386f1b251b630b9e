"""The 'ebm_gan' program's config → library objects, validated in one pass.

:func:`build` is the only place a config of the 'ebm_gan' program is checked:
it reads every field once, refuses a bad one with a :class:`ConfigError`
naming the key, the value and what is allowed, and returns the game, the
per-player optimiser and the dataset it describes — all before anything is
traced or compiled. The registries below are the names a config may use.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from ebm_gan import entropy
from ebm_gan import game as game_lib
from ebm_gan import models
from ebm_gan import objectives
from ebm_gan import optim
from ebm_gan import schedules
from ebm_gan import schemes
from ebm_gan import data as data_lib
from ebm_gan.data import toy
from ebm_gan.errors import InvalidArgumentError
from ebm_gan.runner.programs.ebm_gan import limits
from ebm_gan.runner.programs.ebm_gan import runner_fields
from ebm_gan.runner.programs.ebm_gan.model_config import (
    ACTIVATIONS, ENERGIES, GENERATOR_NORMALISATIONS, GENERATORS, IMAGE_MODELS, NORMALISATIONS,
    build_models, check_conv_fields)
from ebm_gan.runner.registry import (ConfigError, Registry, check_count, check_non_negative,
                                     check_positive, reported_as)

# Every dataset name: the 2-D toys (value: their factory) and the image datasets (value: None,
# loaded by build_dataset from data.dir).
DATASETS = Registry("dataset", {**toy.DATASETS, **{n: None for n in data_lib.IMAGE_DATASETS}})
GAN_LOSSES = Registry("GAN loss", objectives.GAN_LOSSES)
PENALTIES = Registry("gradient penalty", {"none": None, **objectives.PENALTIES})
OPTIMIZERS = Registry("optimizer", optim.OPTIMIZERS)
SCHEMES = Registry("update scheme", schemes.SCHEMES)
ENTROPY_ESTIMATORS = Registry("entropy estimator", {
    "none": entropy.NoEntropy, "knn": entropy.KNN, "flow": entropy.Flow,
    "noisy": entropy.NoisyGenerator, "mi": entropy.MutualInformation,
    "jacobian": entropy.JacobianEntropy, "ssge": entropy.SpectralStein,
    "score": entropy.DenoisingScore})

# What image data allow (the others are refused by check_models_fit_data).
IMAGE_ESTIMATORS = ("none", "knn", "noisy", "mi")
DISPATCHES = Registry("dispatch", {"auto": "auto", "scan": "scan", "per_step": "per_step"})
# parallel.estimators: what a coupling estimator sees over several devices
# (docs/theory.md §8, 'Several devices').
ESTIMATOR_LAYOUTS = Registry("estimator layout", {"global": "global", "per_device": "per_device"})

# Factories ``(config, energy, generator, penalty) -> game``.
GAMES = Registry("game", {
    "ebm": lambda c, critic, generator, penalty: game_lib.EBMGame(
        critic, generator, entropy=build_entropy(c.entropy), penalty=penalty,
        entropy_weight=check_non_negative(c.entropy.weight, "entropy.weight"),
        height_weight=check_non_negative(c.penalty.height, "penalty.height"),
        negative_steps=check_count(c.negative_phase.mala_steps, "negative_phase.mala_steps",
                                   "the generator's samples"),
        negative_step_size=_check_step_size(c.negative_phase.step_size)),
    "gan": lambda c, critic, generator, penalty: game_lib.GANGame(
        critic, generator, GAN_LOSSES.get(c.gan_loss, key="gan_loss"), penalty=penalty),
})

DATA_DIM = 2  # the toy datasets are 2-D
MAX_STEP_SIZE = 1e4  # negative_phase.step_size: a MALA step's noise std √(2ε) is 141 at most


def _check_step_size(value) -> float:
  """``negative_phase.step_size`` if in (0, MAX_STEP_SIZE]: beyond, no MALA move is accepted."""
  check_positive(value, "negative_phase.step_size")
  if value > MAX_STEP_SIZE:
    raise ConfigError(
        f"negative_phase.step_size={value!r} is not allowed: a MALA step adds noise of standard "
        f"deviation √(2·step_size) ≈ {math.sqrt(2 * value):.3g} data units, while every dataset "
        "here lies within a few units (images in [-1, 1]), so (almost) no move would be accepted "
        f"and the negative phase would do nothing; expected a number in (0, {MAX_STEP_SIZE:g}].")
  return value
@dataclasses.dataclass(frozen=True)
class Experiment:
  """What a config of the 'ebm_gan' program resolves to (``devices``: how many it trains on)."""
  config: Any
  game: Any
  tx: Any
  dataset: Any
  devices: int = 1
  penalty_schedule: Any = None  # step -> factor of the penalty weight (None: constant)


def build_entropy(cfg):
  """The estimator ``cfg.name`` from its own settings block ``cfg[cfg.name]``.

  E.g. ``name='knn', knn=dict(k=3)`` gives ``KNN(k=3)``; a missing block means defaults.
  """
  name = cfg.get("name")
  cls = ENTROPY_ESTIMATORS.get(name, key="entropy.name")
  settings = dict(cfg.get(name) or {})
  allowed = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(settings) - allowed)
  if unknown:
    raise ConfigError(f"entropy.{name}.{unknown[0]} is not a setting of the {name!r} "
                      f"estimator; allowed: {', '.join(sorted(allowed)) or 'none'}.")
  with reported_as(f"entropy.{name}"):
    return cls(**{k: _hashable(v) for k, v in settings.items()})


def _hashable(value):
  # Config lists (ml_collections turns tuples into lists on override) → tuples.
  return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def build_optimizer(config, players, lr=None, critic_lr=None):
  """Per-player optax transforms: the generator at ``lr``, every other player at ``critic_lr``.

  Defaults come from ``config.optimizer`` (``critic_lr`` None means = lr); both rates
  follow ``optimizer.schedule`` over ``config.steps`` and the optimiser takes its
  settings from the block ``optimizer.<name>``. The rates may be traced scalars, which
  vectorised sweeps use.
  """
  o = config.optimizer
  lr = o.lr if lr is None else lr
  critic_key = "optimizer.lr" if o.critic_lr is None else "optimizer.critic_lr"
  if critic_lr is None:
    critic_lr = lr if o.critic_lr is None else o.critic_lr
  OPTIMIZERS.get(o.name, key="optimizer.name")
  settings = {k: _hashable(v) for k, v in dict(o.get(o.name) or {}).items()}
  with reported_as(None):  # each rate is reported against the key it came from
    optim.check_learning_rate(lr, "optimizer.lr")
    optim.check_learning_rate(critic_lr, critic_key)

  def rate(value):
    with reported_as("optimizer"):
      return schedules.decayed_learning_rate(value, o.schedule, config.steps, o.final_lr_fraction)

  with reported_as(None):
    return optim.per_player({
        p: optim.make(o.name, rate(lr if p == "generator" else critic_lr),
                      key=f"optimizer.{o.name}", **settings)
        for p in players})


def _check_ema(o) -> None:
  decay = o.ema_decay
  if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
    raise ConfigError(f"optimizer.ema_decay={decay!r} is not allowed; expected a number in "
                      "[0, 1): the weight of the past in the parameters' moving average "
                      "(0 switches it off; 0.999 averages about the last 1000 steps).")


def build(config) -> Experiment:
  """Checks every field of an 'ebm_gan' config and builds its game, optimiser and dataset.

  Raises:
    ConfigError: the first invalid field (key, value, what is allowed).
  """
  runner_fields.check(config, DISPATCHES)
  dataset = build_dataset(config)
  shape = data_shape(dataset)
  check_models_fit_data(config, shape)
  critic, generator = build_models(config.model, shape)
  penalty = PENALTIES.get(config.penalty.name, key="penalty.name")
  penalty_schedule = None
  if penalty is not None:
    check_positive(config.penalty.weight, "penalty.weight")
    penalty_schedule = _penalty_schedule(config)
    penalty = penalty(config.penalty.weight)
  game = GAMES.get(config.game, key="game")(config, critic, generator, penalty)
  if config.game == "ebm" and isinstance(game.entropy, entropy.Flow):
    _check_invertible(game.generator)
  o = config.optimizer
  check_positive(o.lr, "optimizer.lr")
  if o.critic_lr is not None:
    check_positive(o.critic_lr, "optimizer.critic_lr")
  SCHEMES.get(config.scheme, key="scheme")
  if config.critic_steps > 1 and config.scheme != "alternating":
    raise ConfigError(f"critic_steps={config.critic_steps} is not allowed with "
                      f"scheme={config.scheme!r}: only the 'alternating' scheme takes several "
                      "critic steps per generator step; set scheme='alternating' or "
                      "critic_steps=1.")
  devices = runner_fields.devices(config, ESTIMATOR_LAYOUTS)
  _check_estimator_fits(config, game, shape, devices)
  _check_ema(o)
  # Sizes measured on abstract shapes (jax.eval_shape): nothing compiles; after the checks
  # above, so that what a game init refuses (a flow entropy's generator) is named first.
  limits.check(config, game, shape)
  tx = build_optimizer(config, game.players)
  return Experiment(config, game, tx, dataset, devices=devices,
                    penalty_schedule=penalty_schedule)


def _penalty_schedule(config):
  """The penalty weight's factor s_t, decaying from 1 to final_weight / weight (None: constant)."""
  p = config.penalty
  if p.schedule == "constant":
    return None
  check_positive(p.final_weight, "penalty.final_weight")
  if p.final_weight > p.weight:
    raise ConfigError(f"penalty.final_weight={p.final_weight!r} is not allowed with "
                      f"penalty.weight={p.weight!r}: an annealed weight decays, so "
                      "final_weight must be at most weight.")
  with reported_as("penalty"):
    return schedules.decayed_learning_rate(1.0, p.schedule, config.steps, p.final_weight / p.weight)


def _check_estimator_fits(config, game, shape, devices: int) -> None:
  """kNN needs k other samples in each device's batch; the Jacobian estimator a latent space
  no larger than the data."""
  estimator = getattr(game, "entropy", None)
  sharded = devices > 1 and config.parallel.estimators == "per_device"
  per_device = config.batch_size // devices if sharded else config.batch_size
  if isinstance(estimator, entropy.KNN) and estimator.k >= per_device:
    where = (f" over {devices} devices with parallel.estimators='per_device' ({per_device} per "
             "device)" if sharded else "")
    raise ConfigError(
        f"entropy.knn.k={estimator.k} is not allowed with batch_size={config.batch_size}"
        f"{where}: the k-th nearest neighbour is found among the other samples of the batch "
        "an estimator sees, so that batch must be larger than k.")
  if isinstance(estimator, entropy.JacobianEntropy):
    latent = getattr(game.generator, "latent_dim", None)
    if latent is not None and latent > math.prod(shape):
      raise ConfigError(
          f"entropy.name='jacobian' is not allowed with model.latent_dim={latent} and "
          f"{math.prod(shape)}-dimensional data: the change of variables needs a generator "
          "that can be injective, latent_dim <= the data's dimension.")


def is_image(dataset) -> bool:
  """Whether a built dataset is an image dataset (an ``ImageDataset``) rather than a 2-D toy."""
  return isinstance(dataset, data_lib.ImageDataset)


def data_shape(dataset) -> tuple:
  """The shape of one sample: (2,) for the toys, (H, W, C) for an image dataset."""
  return tuple(dataset.shape) if is_image(dataset) else (DATA_DIM,)


def data_dir(config) -> str | None:
  """``data.dir`` with ``~`` expanded (None for '': tensorflow-datasets' own default)."""
  folder = config.data.dir
  if not isinstance(folder, str):
    raise ConfigError(f"data.dir={folder!r} is not allowed; expected a folder path (a string) "
                      "holding prepared tensorflow-datasets folders.")
  return os.path.abspath(os.path.expanduser(folder)) if folder else None


def build_dataset(config):
  """The dataset ``config.dataset``: a toy sampler, or an image dataset read into memory.

  Image datasets are loaded here, before anything compiles: ``digits``,
  ``stacked_digits`` and ``stacked4_digits`` from scikit-learn, the tfds ones from ``data.dir``. A missing
  folder or package is a ConfigError naming the dataset, the folder and how to prepare it.
  """
  factory = DATASETS.get(config.dataset, key="dataset")
  if factory is not None:
    return factory()
  folder = data_dir(config)
  try:
    return data_lib.image_dataset(config.dataset, folder)
  except InvalidArgumentError as e:
    raise ConfigError(f"dataset={config.dataset!r} (data.dir={config.data.dir!r}) cannot be "
                      f"loaded: {e}") from None
  except ImportError as e:
    raise ConfigError(f"dataset={config.dataset!r} needs a package that is not installed: {e}"
                      ) from None


def check_models_fit_data(config, shape) -> None:
  """Refuses models and estimators that cannot take samples of ``shape``.

  Images (H, W, C) take the conv energy and generator only (an MLP generator would give flat
  vectors; the quadratic energy, affine and flow generators are 2-D Gaussian/flow models),
  any entropy estimator but the exact 'flow' one, and no MCMC evaluation yet; 2-D toys take
  every model but the conv ones.
  """
  m, image = config.model, len(shape) == 3
  what = f"dataset={config.dataset!r} ({'images of shape ' + str(shape) if image else '2-D points'})"
  for key in ("energy", "generator"):
    name = m[key]
    registry = ENERGIES if key == "energy" else GENERATORS
    registry.get(name, key=f"model.{key}")
    allowed = IMAGE_MODELS if image else [n for n in registry.names() if n not in IMAGE_MODELS]
    if name not in allowed:
      raise ConfigError(f"model.{key}={name!r} is not allowed with {what}; allowed there: "
                        f"{', '.join(allowed)}.")
  if "conv" in (m.energy, m.generator):
    check_conv_fields(m)
    with reported_as(None):
      models.conv.check_image_shape(shape, f"the image shape of dataset={config.dataset!r}")
  if not image:
    return
  if config.entropy.name not in IMAGE_ESTIMATORS:
    raise ConfigError(f"entropy.name={config.entropy.name!r} is not allowed with {what}: the "
                      "exact entropy needs an invertible (flow) generator, which takes 2-D "
                      f"data only; allowed there: {', '.join(IMAGE_ESTIMATORS)}.")
  if config.evaluation.mcmc_steps > 0:
    raise ConfigError(f"evaluation.mcmc_steps={config.evaluation.mcmc_steps!r} is not allowed "
                      f"with {what}: the MCMC evaluation is wired for the 2-D toys only; set "
                      "evaluation.mcmc_steps=0.")
  check_positive(config.evaluation.mode_samples, "evaluation.mode_samples", integer=True)


def ignored_keys(config) -> dict:
  """Fields that have no effect in ``config`` → why (the launcher warns if one is overridden)."""
  out = {}
  if config.penalty.name == "none":
    out.update(dict.fromkeys(("penalty.weight", "penalty.schedule", "penalty.final_weight"),
                             "penalty.name='none'"))
  elif config.penalty.schedule == "constant":
    out["penalty.final_weight"] = "penalty.schedule='constant'"
  ebm_only = ("entropy.weight", "penalty.height", "negative_phase.mala_steps",
              "negative_phase.step_size")
  out.update({"gan_loss": "game='ebm'"} if config.game == "ebm"
             else dict.fromkeys(ebm_only, f"game={config.game!r}"))
  if "conv" not in (config.model.energy, config.model.generator):
    out.update(dict.fromkeys(("model.conv_width", "model.critic_conv_width",
                              "model.generator_conv_width", "model.normalisation",
                              "model.generator_normalisation"), "no conv model"))
  elif None not in (config.model.critic_conv_width, config.model.generator_conv_width):
    out["model.conv_width"] = "model.critic_conv_width and model.generator_conv_width are set"
  if DATASETS.get(config.dataset, key="dataset") is not None:  # a toy
    out["data.dir"] = f"dataset={config.dataset!r}"
  else:
    out["evaluation.entropy_samples"] = (f"dataset={config.dataset!r} (the generator's entropy "
                                         "is estimated on the 2-D toys)")
  if not config.dataset.startswith("stacked_"):
    out.update(dict.fromkeys(("evaluation.mode_samples", "evaluation.classifier_cache"),
                             f"dataset={config.dataset!r} (mode counting is for stacked datasets)"))
  return out


def _check_invertible(generator) -> None:
  """The exact (flow) entropy needs a generator with a log-determinant."""
  if isinstance(generator, models.CouplingFlow):
    return
  if isinstance(generator, models.AffineGenerator) and generator.data_dim == generator.latent_dim:
    return
  raise ConfigError(
      "entropy.name='flow' needs an invertible generator with an exact log-density: "
      "model.generator='flow', or 'affine' with model.latent_dim equal to the data's "
      f"dimension ({DATA_DIM}); got model.generator={type(generator).__name__}.")


# The named choices of an 'ebm_gan' config, for ``--help``: config key -> allowed names.
CHOICES = {
    "dataset": DATASETS, "game": GAMES, "gan_loss": GAN_LOSSES,
    "model.energy": ENERGIES, "model.generator": GENERATORS, "model.normalisation": NORMALISATIONS,
    "model.generator_normalisation": GENERATOR_NORMALISATIONS,
    "dispatch": DISPATCHES, "parallel.estimators": ESTIMATOR_LAYOUTS,
    "optimizer.schedule": schedules.SCHEDULES, "penalty.schedule": schedules.SCHEDULES,
    "optimizer.ogda.first_step": optim.FIRST_STEPS, "entropy.score.activation": ACTIVATIONS,
    "entropy.ssge.bandwidth": entropy.stein.BANDWIDTHS,
    "model.energy_activation": ACTIVATIONS, "model.generator_activation": ACTIVATIONS,
    "entropy.name": ENTROPY_ESTIMATORS, "entropy.mi.bound": entropy.mutual_info.BOUNDS,
    "entropy.mi.activation": ACTIVATIONS, "entropy.noisy.posterior": entropy.noisy.POSTERIORS,
    "entropy.noisy.proposal": entropy.noisy.PROPOSALS, "penalty.name": PENALTIES,
    "optimizer.name": OPTIMIZERS, "scheme": SCHEMES,
}
