"""Flax (linen) MLP players: the energy U_m(x) and the generator G_f(z) (docs/theory.md §2).

Energies return U, a log-unnormalised density (higher = more probable), one
scalar per sample: x[B, ...] → U[B]. Generators map latents z[B, latent_dim]
to samples x[B, data_dim] and expose ``latent_dim`` so games can draw z.
"""

from __future__ import annotations

from typing import Callable, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.errors import lookup

# The activations an MLP can be built with, by name.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, 0.2), "elu": nn.elu,
    "gelu": nn.gelu, "swish": nn.swish, "silu": nn.silu, "softplus": nn.softplus,
    "tanh": jnp.tanh}


class MLP(nn.Module):
  """x ↦ Dense(out) ∘ (act ∘ Dense(h_L)) ∘ … ∘ (act ∘ Dense(h_1)) (x flattened per sample)."""
  hidden: Sequence[int]
  out: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    act = lookup(ACTIVATIONS, self.activation, "activation", "activation")
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
    u = MLP(self.hidden, 1, self.activation)(x)[:, 0]
    chex.assert_shape(u, x.shape[:1])
    return u


class MLPGenerator(nn.Module):
  """G_f(z) = MLP(z): z[B, latent_dim] → x[B, data_dim]."""
  data_dim: int
  latent_dim: int
  hidden: Sequence[int] = (512, 512, 512)
  activation: str = "relu"

  @nn.compact
  def __call__(self, z):
    chex.assert_shape(z, (None, self.latent_dim))
    return MLP(self.hidden, self.data_dim, self.activation)(z)
