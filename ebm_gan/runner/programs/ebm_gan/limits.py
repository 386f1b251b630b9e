"""Size limits: refuse, before anything is built or traced, a config that would obviously not fit.

Three quantities of an 'ebm_gan' config are estimated from its fields alone
(no model is built, nothing is allocated):

* ``parameters``: the weights and biases of every network the config names — the
  energy ``[d, *model.energy_hidden, 1]``, the generator
  ``[model.latent_dim, *model.generator_hidden, d]`` (a flow's couplings use the
  same widths, per layer), or the conv players of ``model.critic_conv_width`` and
  ``model.generator_conv_width`` (each ``model.conv_width`` when None) on the
  dataset's image shape (exactly as :mod:`ebm_gan.models.conv` builds them,
  :func:`conv_energy_layers`, :func:`conv_generator_layers`), and the entropy
  estimator's own networks when it is the chosen one (d: the data's dimension, 2
  for the toys, H·W·C for images). An MLP of widths ``[w0, ..., wL]`` has
  ``sum (w_i + 1) w_{i+1}`` parameters. Training keeps about four float32 copies
  (parameters, gradients, two optimiser moments), so 10⁸ parameters are about 1.5 GiB.
* ``activations``: ``batch_size x`` the largest layer output of one sample (an MLP's
  widest layer; a conv layer's H·W·channels), the largest single float32 array of
  one step's forward pass (2²⁸ elements are 1 GiB).
* ``critic_steps``: the alternating scheme writes out every critic step of a
  round in the traced program, so the trace (and compile) time grows with it.

Each bound can be raised for a machine that has room with an environment
variable (``EBM_GAN_MAX_PARAMETERS``, ``EBM_GAN_MAX_ACTIVATIONS``,
``EBM_GAN_MAX_CRITIC_STEPS``); the refusal names the key, its value, the
estimate, the bound and that variable.
"""

from __future__ import annotations

import math
import os

from ebm_gan.models.conv import halvings
from ebm_gan.runner.programs.ebm_gan.model_config import conv_width
from ebm_gan.runner.registry import ConfigError

# name -> (default bound, environment variable that overrides it, what it counts)
LIMITS = {
    "parameters": (10**8, "EBM_GAN_MAX_PARAMETERS", "parameters"),
    "activations": (2**28, "EBM_GAN_MAX_ACTIVATIONS", "float32 elements in one layer's batch"),
    "critic_steps": (1000, "EBM_GAN_MAX_CRITIC_STEPS", "critic steps written out per round"),
}


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


def mlp_parameters(widths) -> int:
  """Weights and biases of a dense MLP with layer widths ``[w0, ..., wL]``: sum (w_i + 1) w_{i+1}."""
  widths = list(widths)
  return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def conv_energy_layers(shape, width: int) -> list[tuple[int, int]]:
  """``(parameters, output elements per sample)`` of each layer of a ``ConvEnergy(width)`` on
  images of ``shape`` (H, W, C): conv3×3 to ``width``, n stride-2 conv4×4 doubling the
  channels, a dense read-out."""
  side, _, channels = shape
  layers, c = [(9 * channels * width + width, side * side * width)], width
  for _ in range(halvings(side)):
    side //= 2
    layers.append((16 * c * 2 * c + 2 * c, side * side * 2 * c))
    c *= 2
  return layers + [(side * side * c + 1, 1)]


def conv_generator_layers(shape, latent_dim: int, width: int,
                          group_norm: bool = False) -> list[tuple[int, int]]:
  """``(parameters, largest array per sample)`` of each layer of a ``ConvGenerator`` on
  images of ``shape``: a dense layer to (H/2ⁿ)² · width·2ⁿ, n (upsample ×2, conv3×3 halving
  the channels) — the upsampled map counted — and a conv3×3 to C; with ``group_norm``, each
  hidden layer's C' output channels add a scale and a shift each (2C')."""
  side, _, channels = shape
  n = halvings(side)
  start, c = side // 2 ** n, width * 2 ** n
  norm = 2 if group_norm else 0
  layers = [((latent_dim + 1) * start * start * c + norm * c, start * start * c)]
  for _ in range(n):
    start *= 2
    layers.append((9 * c * (c // 2) + c // 2 + norm * (c // 2), start * start * c))
    c //= 2
  return layers + [(9 * c * channels + channels, side * side * channels)]


def _widths(value) -> tuple:
  return (value,) if isinstance(value, int) else tuple(value)


def _mlp(key: str, widths) -> tuple[str, int, int]:
  return key, mlp_parameters(widths), max(widths)


def _conv(key: str, layers) -> tuple[str, int, int]:
  return key, sum(p for p, _ in layers), max(a for _, a in layers)


def _networks(config, shape) -> list[tuple[str, int, int]]:
  """``(key, parameters, largest layer output per sample)`` of every network a config trains
  (estimates for flows and estimators), for data of ``shape``."""
  m, dim = config.model, math.prod(shape)
  if m.energy == "conv":
    key, width = conv_width(m, "critic")
    nets = [_conv(key, conv_energy_layers(shape, width))]
  else:
    nets = [_mlp("model.energy_hidden", [dim, *_widths(m.energy_hidden), 1])]
  if m.generator == "conv":
    key, width = conv_width(m, "generator")
    layers = conv_generator_layers(shape, m.latent_dim, width,
                                   group_norm=m.generator_normalisation == "group")
    dense = layers[0][0] > sum(p for p, _ in layers) / 2  # then the latent size dominates
    nets.append(_conv("model.latent_dim" if dense else key, layers))
  else:
    gen = [m.latent_dim, *_widths(m.generator_hidden), dim]
    if m.generator == "flow":  # each coupling maps half the coordinates to a scale and a shift
      gen = gen * max(int(m.flow_layers), 1)
    nets.append(_mlp("model.generator_hidden", gen))
  name = config.entropy.name
  if name == "noisy":
    nets.append(_mlp("entropy.noisy.proposal_hidden",
                     [dim, *_widths(config.entropy.noisy.proposal_hidden), m.latent_dim]))
  elif name == "mi":
    nets.append(_mlp("entropy.mi.hidden",
                     [dim + m.latent_dim, *_widths(config.entropy.mi.hidden), 1]))
  return nets


def _refuse(name: str, key: str, value, estimate: int) -> ConfigError:
  limit, var, what = LIMITS[name]
  return ConfigError(
      f"{key}={value!r} is not allowed here: it needs about {estimate:.3g} {what}, beyond the "
      f"limit of {bound(name):.3g} (default {limit:.3g}). Use a smaller value, or, on a machine "
      f"with room for it, raise the limit with the environment variable {var}.")


def check(config, shape=(2,)) -> None:
  """Refuses an 'ebm_gan' config whose estimated size is beyond a bound (see the module docstring).

  Call it after the widths were checked to be positive integers; ``shape`` is one sample's
  ((2,) for the toys, (H, W, C) for images).

  Raises:
    ConfigError: naming the largest network's key (or ``batch_size``, ``critic_steps``).
  """
  nets = _networks(config, tuple(shape))
  total = sum(p for _, p, _ in nets)
  if total > bound("parameters"):
    key = max(nets, key=lambda net: net[1])[0]
    raise _refuse("parameters", key, _value(config, key), total)
  widest = max(a for _, _, a in nets)
  if config.batch_size * widest > bound("activations"):
    raise _refuse("activations", "batch_size", config.batch_size, config.batch_size * widest)
  if config.critic_steps > bound("critic_steps"):
    raise _refuse("critic_steps", "critic_steps", config.critic_steps, config.critic_steps)


def _value(config, key: str):
  for part in key.split("."):
    config = config[part]
  return tuple(config) if isinstance(config, (list, tuple)) else config
