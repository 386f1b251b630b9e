"""Jittable, seeded 2-D toy distributions: ``sample(key, n) -> x[n, 2]``.

Mixtures expose their modes and component standard deviation so metrics can
count modes covered and high-quality samples (within 3σ of a mode).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ebm_gan.registry import Registry


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

  def log_prob(self, x: jax.Array) -> jax.Array:
    """log p(x) = logsumexp_c [log N(x; μ_c, σ²I)] − log K."""
    d2 = jnp.sum((x[:, None, :] - jnp.asarray(self.modes, x.dtype)) ** 2, axis=-1)
    log_n = -0.5 * d2 / self.std ** 2 - jnp.log(2 * jnp.pi * self.std ** 2)
    return jax.nn.logsumexp(log_n, axis=1) - math.log(len(self.modes))

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


DATASETS: Registry[Callable[[], object]] = Registry("dataset")
DATASETS.register("8gaussians", eight_gaussians)
DATASETS.register("25gaussians", twenty_five_gaussians)
DATASETS.register("swissroll", swissroll)


def get(name: str):
  """The toy distribution ``name`` (ConfigError listing the choices if unknown)."""
  return DATASETS.get(name, key="dataset")()
