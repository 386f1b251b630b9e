"""Flax (linen) players: MLP energy U_m(x) and MLP generator G_f(z).

Energies return U, a log-unnormalised density (higher = more probable), one
scalar per sample: x[B, ...] → U[B]. Generators map latents z[B, latent_dim]
to samples x[B, data_dim] and expose ``latent_dim`` so games can draw z.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.registry import Registry

ACTIVATIONS: Registry[Callable[[jax.Array], jax.Array]] = Registry("activation")
for _name, _fn in {"relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
                   "elu": nn.elu, "gelu": nn.gelu, "swish": nn.swish, "silu": nn.silu,
                   "softplus": nn.softplus, "tanh": jnp.tanh}.items():
  ACTIVATIONS.register(_name, _fn)


class MLP(nn.Module):
  """x ↦ Dense(out) ∘ (act ∘ Dense(h_L)) ∘ … ∘ (act ∘ Dense(h_1)) (x flattened per sample)."""
  hidden: Sequence[int]
  out: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS.get(self.activation, key="model.activation")
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = act(nn.Dense(width)(x))
    return nn.Dense(self.out)(x)


class MLPEnergy(nn.Module):
  """U_m(x) = MLP(x) ∈ ℝ per sample: x[B, ...] → U[B] (also usable as a GAN logit)."""
  hidden: Sequence[int] = (512, 512, 512)
  activation: str = "leaky_relu"

  @nn.compact
  def __call__(self, x):
    return MLP(self.hidden, 1, self.activation)(x)[:, 0]


class MLPGenerator(nn.Module):
  """G_f(z) = MLP(z): z[B, latent_dim] → x[B, data_dim]."""
  data_dim: int
  latent_dim: int
  hidden: Sequence[int] = (512, 512, 512)
  activation: str = "relu"

  @nn.compact
  def __call__(self, z):
    if z.shape[-1] != self.latent_dim:
      raise ValueError(f"latents have {z.shape[-1]} dims, the generator expects {self.latent_dim}")
    return MLP(self.hidden, self.data_dim, self.activation)(z)


class AffineGenerator(nn.Module):
  """G_f(z) = A z + b, the linear-Gaussian generator: q_f = N(b, A Aᵀ) for z ~ N(0, I).

  Its entropy is ½ log det(2πe A Aᵀ) (data_dim = latent_dim), the closed form
  that entropy estimators and Gaussian games are tested against.
  """
  data_dim: int
  latent_dim: int
  init_scale: float = 1.0

  @nn.compact
  def __call__(self, z):
    a = self.param("A", lambda k, s: self.init_scale * jnp.eye(*s), (self.data_dim, self.latent_dim))
    b = self.param("b", nn.initializers.zeros, (self.data_dim,))
    return z @ a.T + b


class QuadraticEnergy(nn.Module):
  """U(x) = −½ (x − μ)ᵀ P (x − μ), P = L Lᵀ (L lower-triangular): a Gaussian's log density up to Z.

  q_m = N(μ, P⁻¹), so a game with this energy has a closed-form equilibrium.
  """
  data_dim: int

  @nn.compact
  def __call__(self, x):
    d = self.data_dim
    mu = self.param("mu", nn.initializers.zeros, (d,))
    l = self.param("L", lambda k, s: jnp.eye(*s), (d, d))
    l = jnp.tril(l)
    r = (x.reshape(x.shape[0], -1) - mu) @ l
    return -0.5 * jnp.sum(r * r, axis=1)


# Factories ``(model_config, data_dim) -> flax module`` for the experiment builder.
ENERGIES = Registry("energy model")
GENERATORS = Registry("generator model")

ENERGIES.register("mlp", lambda cfg, data_dim: MLPEnergy(tuple(cfg.energy_hidden),
                                                         cfg.energy_activation))
ENERGIES.register("quadratic", lambda cfg, data_dim: QuadraticEnergy(data_dim))
GENERATORS.register("mlp", lambda cfg, data_dim: MLPGenerator(
    data_dim, cfg.latent_dim, tuple(cfg.generator_hidden), cfg.generator_activation))
GENERATORS.register("affine", lambda cfg, data_dim: AffineGenerator(data_dim, cfg.latent_dim))
