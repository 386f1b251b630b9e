"""Size limits: refuse, before anything is built or traced, a config that would obviously not fit.

Three quantities of an 'ebm_gan' config are estimated from its fields alone
(no model is built, nothing is allocated):

* ``parameters``: the weights and biases of every MLP the config names — the
  energy ``[2, *model.energy_hidden, 1]``, the generator
  ``[model.latent_dim, *model.generator_hidden, 2]`` (a flow's couplings use the
  same widths, per layer), and the entropy estimator's own networks when it is
  the chosen one. An MLP of widths ``[w0, ..., wL]`` has ``sum (w_i + 1) w_{i+1}``
  parameters. Training keeps about four float32 copies (parameters, gradients,
  two optimiser moments), so 10⁸ parameters are about 1.5 GiB.
* ``activations``: ``batch_size x`` the widest layer, the largest single
  float32 array of one step's forward pass (2²⁸ elements are 1 GiB).
* ``critic_steps``: the alternating scheme writes out every critic step of a
  round in the traced program, so the trace (and compile) time grows with it.

Each bound can be raised for a machine that has room with an environment
variable (``EBM_GAN_MAX_PARAMETERS``, ``EBM_GAN_MAX_ACTIVATIONS``,
``EBM_GAN_MAX_CRITIC_STEPS``); the refusal names the key, its value, the
estimate, the bound and that variable.
"""

from __future__ import annotations

import os

from ebm_gan.runner.registry import ConfigError

DATA_DIM = 2  # every dataset of the 'ebm_gan' program is a 2-D toy distribution

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


def _widths(value) -> tuple:
  return (value,) if isinstance(value, int) else tuple(value)


def _networks(config) -> dict[str, list[int]]:
  """Key -> layer widths of every MLP that a config trains (estimates for flows and estimators)."""
  m = config.model
  nets = {"model.energy_hidden": [DATA_DIM, *_widths(m.energy_hidden), 1]}
  gen = [m.latent_dim, *_widths(m.generator_hidden), DATA_DIM]
  if m.generator == "flow":  # each coupling maps half the coordinates to a scale and a shift
    gen = gen * max(int(m.flow_layers), 1)
  nets["model.generator_hidden"] = gen
  name = config.entropy.name
  if name == "noisy":
    nets["entropy.noisy.proposal_hidden"] = [DATA_DIM, *_widths(
        config.entropy.noisy.proposal_hidden), m.latent_dim]
  elif name == "mi":
    nets["entropy.mi.hidden"] = [DATA_DIM + m.latent_dim, *_widths(config.entropy.mi.hidden), 1]
  return nets


def _refuse(name: str, key: str, value, estimate: int) -> ConfigError:
  limit, var, what = LIMITS[name]
  return ConfigError(
      f"{key}={value!r} is not allowed here: it needs about {estimate:.3g} {what}, beyond the "
      f"limit of {bound(name):.3g} (default {limit:.3g}). Use a smaller value, or, on a machine "
      f"with room for it, raise the limit with the environment variable {var}.")


def check(config) -> None:
  """Refuses an 'ebm_gan' config whose estimated size is beyond a bound (see the module docstring).

  Call it after the widths were checked to be positive integers.

  Raises:
    ConfigError: naming the largest network's key (or ``batch_size``, ``critic_steps``).
  """
  nets = _networks(config)
  sizes = {key: mlp_parameters(w) for key, w in nets.items()}
  if sum(sizes.values()) > bound("parameters"):
    key = max(sizes, key=sizes.get)
    raise _refuse("parameters", key, _value(config, key), sum(sizes.values()))
  widest = max(max(w) for w in nets.values())
  if config.batch_size * widest > bound("activations"):
    raise _refuse("activations", "batch_size", config.batch_size, config.batch_size * widest)
  if config.critic_steps > bound("critic_steps"):
    raise _refuse("critic_steps", "critic_steps", config.critic_steps, config.critic_steps)


def _value(config, key: str):
  for part in key.split("."):
    config = config[part]
  return tuple(config) if isinstance(config, (list, tuple)) else config
