"""The model block of an 'ebm_gan' config → the energy (or discriminator) and generator modules.

The registries below are the names ``model.energy`` / ``model.generator`` may take; each
factory is ``(model_config, data_shape) -> flax module``, data_shape (2,) for the 2-D toys,
(H, W, C) for images. The conv players' widths: ``model.critic_conv_width`` (the energy, or
the GAN's discriminator) and ``model.generator_conv_width``, each ``None`` meaning
``model.conv_width`` (:func:`conv_width`).
"""

from __future__ import annotations

from ebm_gan import models
from ebm_gan.runner.registry import ConfigError, Registry, check_positive

ACTIVATIONS = Registry("activation", models.ACTIVATIONS)
NORMALISATIONS = Registry("normalisation", {n: n for n in models.NORMALISATIONS})
GENERATOR_NORMALISATIONS = Registry(
    "generator normalisation", {n: n for n in models.FEATURE_NORMALISATIONS})
# The field that sets each conv player's width when it is not None (else model.conv_width).
WIDTH_KEYS = {"critic": "model.critic_conv_width", "generator": "model.generator_conv_width"}


def conv_width(m, player: str) -> tuple[str, int]:
  """``(key, width)`` of the conv ``player`` ('critic' or 'generator') of the model block ``m``:
  its own field if set, else ``model.conv_width`` (the key is the field the width came from)."""
  key = WIDTH_KEYS[player]
  own = m[key.split(".")[1]]
  return (key, own) if own is not None else ("model.conv_width", m.conv_width)


ENERGIES = Registry("energy model", {
    "mlp": lambda m, s: models.MLPEnergy(tuple(m.energy_hidden), m.energy_activation),
    "quadratic": lambda m, s: models.QuadraticEnergy(s[0]),
    "conv": lambda m, s: models.ConvEnergy(conv_width(m, "critic")[1], m.normalisation),
})
GENERATORS = Registry("generator model", {
    "mlp": lambda m, s: models.MLPGenerator(s[0], m.latent_dim, tuple(m.generator_hidden),
                                            m.generator_activation),
    "affine": lambda m, s: models.AffineGenerator(s[0], m.latent_dim),
    # latent_dim is data_dim, whatever the config says: a flow is a bijection.
    "flow": lambda m, s: models.CouplingFlow(data_dim=s[0], num_layers=int(m.flow_layers),
                                             hidden=tuple(m.generator_hidden),
                                             activation=m.generator_activation),
    "conv": lambda m, s: models.ConvGenerator(
        tuple(s), m.latent_dim, conv_width(m, "generator")[1], m.normalisation,
        feature_normalisation=m.generator_normalisation),
})
# The models image datasets take (the others are refused by config.check_models_fit_data).
IMAGE_MODELS = ("conv",)


def check_widths(value, key):
  """ConfigError unless ``value`` is a positive integer or a non-empty tuple of them."""
  if isinstance(value, int):
    value = (value,)
  if not isinstance(value, (tuple, list)) or not value or not all(
      isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value):
    raise ConfigError(f"{key}={value!r} is not allowed; expected a tuple of positive integers, "
                      "e.g. (256, 256).")


def check_conv_fields(m) -> None:
  """The conv players' fields: widths (positive integers; the per-player ones may be None)
  and the two normalisation choices."""
  check_positive(m.conv_width, "model.conv_width", integer=True)
  for key in WIDTH_KEYS.values():
    value = m[key.split(".")[1]]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value <= 0):
      raise ConfigError(f"{key}={value!r} is not allowed; expected a positive integer, or None "
                        f"(the default: model.conv_width, {m.conv_width!r}).")
  NORMALISATIONS.get(m.normalisation, key="model.normalisation")
  GENERATOR_NORMALISATIONS.get(m.generator_normalisation, key="model.generator_normalisation")


def build_models(m, data_shape):
  """The energy (or discriminator) and generator modules of the model block ``m`` for samples
  of ``data_shape`` ((2,) for the toys, (H, W, C) for images)."""
  check_widths(m.energy_hidden, "model.energy_hidden")
  check_widths(m.generator_hidden, "model.generator_hidden")
  ACTIVATIONS.get(m.energy_activation, key="model.energy_activation")
  ACTIVATIONS.get(m.generator_activation, key="model.generator_activation")
  check_positive(m.latent_dim, "model.latent_dim", integer=True)
  check_positive(m.flow_layers, "model.flow_layers", integer=True)
  if "conv" in (m.energy, m.generator):
    check_conv_fields(m)
  critic = ENERGIES.get(m.energy, key="model.energy")(m, data_shape)
  generator = GENERATORS.get(m.generator, key="model.generator")(m, data_shape)
  return critic, generator
