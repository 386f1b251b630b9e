"""Size limits: refuse, before anything is compiled, a config that would obviously not fit.

Three quantities of an 'ebm_gan' config are read from the game it builds, with
``jax.eval_shape`` (abstract shapes: nothing is allocated and nothing compiles, so a
10¹²-parameter layer is measured in milliseconds):

* ``parameters``: every parameter ``game.init`` would create, of every player (the energy or
  discriminator, the generator, an estimator's own networks). Training keeps about four
  float32 copies (parameters, gradients, two optimiser moments), so 10⁸ parameters are
  about 1.5 GiB.
* ``activations``: ``batch_size x`` the largest array one sample passes into or out of any
  layer of the critic's and the generator's forward passes (recorded with
  ``flax.linen.intercept_methods``; an upsampled map fed to a convolution counts), the
  largest single float32 array of one step (2²⁸ elements are 1 GiB).
* ``critic_steps``: the alternating scheme writes out every critic step of a round in the
  traced program, so the trace (and compile) time grows with it.

The runner knows no architecture: the counts come from the modules themselves. What it does
know is which config field sizes each player, to name it in the refusal (:func:`_player_key`).
Each bound can be raised for a machine that has room with an environment variable
(``EBM_GAN_MAX_PARAMETERS``, ``EBM_GAN_MAX_ACTIVATIONS``, ``EBM_GAN_MAX_CRITIC_STEPS``); the
refusal names the key, its value, the measured size, the bound and that variable.
"""

from __future__ import annotations

import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.runner.programs.ebm_gan.model_config import conv_width
from ebm_gan.runner.registry import ConfigError

# name -> (default bound, environment variable that overrides it, what it counts)
LIMITS = {
    "parameters": (10**8, "EBM_GAN_MAX_PARAMETERS", "parameters"),
    "activations": (2**28, "EBM_GAN_MAX_ACTIVATIONS", "float32 elements in one layer's batch"),
    "critic_steps": (1000, "EBM_GAN_MAX_CRITIC_STEPS", "critic steps written out per round"),
}
# An estimator's own players and the field that sizes each.
ESTIMATOR_KEYS = {"posterior": "entropy.noisy.proposal_hidden", "statistics": "entropy.mi.hidden",
                  "score": "entropy.score.hidden"}


def bound(name: str) -> int:
  """The bound for ``name``: its environment variable when set (a positive integer), else the default."""
  default, var, _ = LIMITS[name]
  text = os.environ.get(var)
  if text is None:
    return default
  try:
    value = int(float(text))
  except ValueError:
    value = 0
  if value <= 0:
    raise ConfigError(f"the environment variable {var}={text!r} is not allowed; expected a "
                      f"positive integer (the default is {default}).")
  return value


def parameter_shapes(game, shape) -> dict:
  """Player → its parameters' shapes (``jax.ShapeDtypeStruct``), as ``game.init`` makes them
  for samples of ``shape``, without allocating them."""
  example = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
  return jax.eval_shape(game.init, jax.random.PRNGKey(0), example)


def count(tree) -> int:
  """The number of scalars in a tree of arrays or shapes."""
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def largest_activation(game, params, shape) -> int:
  """Elements per sample of the largest array passed into or out of a layer when the critic
  scores a sample and the generator draws one (a batch of 2, sizes per row)."""
  sizes = [math.prod(shape)]

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    for x in jax.tree.leaves((args, out)):
      if getattr(x, "ndim", 0) >= 1:
        sizes.append(math.prod(x.shape[1:]))
    return out

  def forward(p):
    samples, _ = game.sample(p, jax.random.PRNGKey(0), 2)
    return game.critic_fn(p)(samples)

  with nn.intercept_methods(record):
    jax.eval_shape(forward, params)
  return max(sizes)


def _player_key(config, game, player: str, player_params) -> str:
  """The config field that sizes ``player`` (for the refusal's message)."""
  m = config.model
  if player in game.critics:
    return conv_width(m, "critic")[0] if m.energy == "conv" else "model.energy_hidden"
  if player != "generator":
    return ESTIMATOR_KEYS.get(player, "entropy.name")
  if m.generator == "affine":
    return "model.latent_dim"
  if m.generator != "conv":
    return "model.generator_hidden"
  biggest = max(jax.tree.leaves(player_params), key=lambda x: math.prod(x.shape))
  from_latent = biggest.shape[0] == m.latent_dim and 2 * math.prod(biggest.shape) > count(
      player_params)  # the dense layer from z dominates: the latent size is what to lower
  return "model.latent_dim" if from_latent else conv_width(m, "generator")[0]


def _refuse(name: str, key: str, value, estimate: int) -> ConfigError:
  limit, var, what = LIMITS[name]
  return ConfigError(
      f"{key}={value!r} is not allowed here: it needs about {estimate:.3g} {what}, beyond the "
      f"limit of {bound(name):.3g} (default {limit:.3g}). Use a smaller value, or, on a machine "
      f"with room for it, raise the limit with the environment variable {var}.")


@functools.lru_cache(maxsize=128)
def _measured(game, shape: tuple) -> tuple[dict, int]:
  """``(parameter shapes per player, largest activation per sample)`` of ``game`` for samples
  of ``shape``. Games are values, so a sweep's members that differ only in seed, rates or
  schedule share one measurement (the toy benchmark's 63 members: 7 games)."""
  params = parameter_shapes(game, shape)
  return params, largest_activation(game, params, shape)


def check(config, game, shape=(2,)) -> None:
  """Refuses an 'ebm_gan' config whose game is beyond a bound (see the module docstring).

  ``game`` is the config's built game and ``shape`` one sample's ((2,) for the toys,
  (H, W, C) for images).

  Raises:
    ConfigError: naming the largest player's field (or ``batch_size``, ``critic_steps``).
  """
  params, widest = _measured(game, tuple(shape))
  sizes = {player: count(p) for player, p in params.items()}
  total = sum(sizes.values())
  if total > bound("parameters"):
    largest = max(sizes, key=sizes.get)
    key = _player_key(config, game, largest, params[largest])
    raise _refuse("parameters", key, _value(config, key), total)
  if config.batch_size * widest > bound("activations"):
    raise _refuse("activations", "batch_size", config.batch_size, config.batch_size * widest)
  if config.critic_steps > bound("critic_steps"):
    raise _refuse("critic_steps", "critic_steps", config.critic_steps, config.critic_steps)


def _value(config, key: str):
  for part in key.split("."):
    config = config[part]
  return tuple(config) if isinstance(config, (list, tuple)) else config
