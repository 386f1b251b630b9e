"""Jittable, seeded 2-D toy distributions: ``sample(key, n) -> x[n, 2]``.

Mixtures expose their modes and component standard deviation so metrics can
count modes covered and high-quality samples (within 3σ of a mode).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ebm_gan.errors import lookup


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """Equal-weight isotropic mixture: x = μ_c + σ ε, c ~ Uniform(modes), ε ~ N(0, I)."""
  modes: np.ndarray  # [K, 2]
  std: float

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n samples of the mixture."""
    k_c, k_e = jax.random.split(key)
    c = jax.random.randint(k_c, (n,), 0, len(self.modes))
    return jnp.asarray(self.modes, jnp.float32)[c] + self.std * jax.random.normal(k_e, (n, 2))

  @property
  def scale(self) -> float:
    return float(np.abs(self.modes).max()) + 3 * self.std


@dataclasses.dataclass(frozen=True)
class Sampler:
  """A distribution known only through samples (no modes)."""
  fn: Callable[[jax.Array, int], jax.Array]
  scale: float

  def sample(self, key, n):
    """n samples."""
    return self.fn(key, n)


def eight_gaussians(radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
  """8 modes evenly spaced on a circle of the given radius."""
  a = 2 * np.pi * np.arange(8) / 8
  return GaussianMixture(np.stack([radius * np.cos(a), radius * np.sin(a)], 1), std)


def twenty_five_gaussians(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
  """25 modes on the grid {−2, −1, 0, 1, 2}² × spacing (the PacGAN/VEEGAN/MEG benchmark)."""
  g = spacing * np.arange(-2, 3, dtype=np.float64)
  return GaussianMixture(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2), std)


def _swissroll(key, n, noise=0.25):
  # The 2-D swiss roll: t ~ 1.5π(1 + 2u), x = (t cos t, t sin t)/5 + noise/5.
  k_t, k_e = jax.random.split(key)
  t = 1.5 * jnp.pi * (1 + 2 * jax.random.uniform(k_t, (n,)))
  x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], 1)
  return (x + noise * jax.random.normal(k_e, (n, 2))) / 5.0


def swissroll() -> Sampler:
  """The 2-D swiss roll scaled to about [−3, 3]²."""
  return Sampler(_swissroll, 3.2)


# The toy distributions by name.
DATASETS: dict[str, Callable[[], object]] = {
    "8gaussians": eight_gaussians, "25gaussians": twenty_five_gaussians, "swissroll": swissroll}


def get(name: str):
  """The toy distribution ``name`` (InvalidArgumentError listing the choices if unknown)."""
  return lookup(DATASETS, name, "dataset", "dataset")()
