"""Jittable, seeded 2-D toy distributions: ``sample(key, n) -> x[n, 2]``.

Every distribution has a ``scale`` (its samples lie in about [−scale, scale]², all
about [−3, 3]² or a little beyond, the pictures' box) and, where its density is
closed-form, ``log_prob(x[n, 2]) -> [n]`` (the normalised log-density, used by the
quadrature and generator KL metrics of :mod:`ebm_gan.metrics`). Mixtures expose their
modes and component standard deviation so metrics can count modes covered and
high-quality samples (within 3σ of a mode).

Datasets (:data:`DATASETS`): 8gaussians, 25gaussians, rings, circles, checkerboard
(with ``log_prob``); swissroll, 2spirals, pinwheel, moons (samples only).
"""

from __future__ import annotations

import dataclasses
import math
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

  def log_prob(self, x: jax.Array) -> jax.Array:
    """log p(x) = logsumexp_c log N(x; μ_c, σ²I) − log K."""
    d2 = jnp.sum((x[:, None, :] - jnp.asarray(self.modes, x.dtype)) ** 2, axis=-1)
    log_n = -0.5 * d2 / self.std ** 2 - math.log(2 * math.pi * self.std ** 2)
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


@dataclasses.dataclass(frozen=True)
class Rings:
  """Equal-weight concentric rings: x = r_c (cos θ, sin θ) + σ ε, c ~ Uniform, θ ~ U(0, 2π).

  Averaging N(x; r u(θ), σ²I) over θ gives the closed form (I₀ the modified Bessel
  function, ∫ exp(z cos θ) dθ/2π = I₀(z)):

      p(x) = (1/K) Σ_c exp(−(|x|² + r_c²)/2σ²) I₀(|x| r_c/σ²) / (2πσ²),

  evaluated stably as log I₀(z) = log i0e(z) + z.
  """
  radii: tuple
  std: float

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n samples of the rings."""
    k_c, k_t, k_e = jax.random.split(key, 3)
    r = jnp.asarray(self.radii, jnp.float32)[jax.random.randint(k_c, (n,), 0, len(self.radii))]
    t = 2 * jnp.pi * jax.random.uniform(k_t, (n,))
    return (r[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], 1)
            + self.std * jax.random.normal(k_e, (n, 2)))

  def log_prob(self, x: jax.Array) -> jax.Array:
    """log p(x) (see the class docstring)."""
    rho = jnp.sqrt(jnp.sum(x * x, axis=-1))[:, None]
    r = jnp.asarray(self.radii, x.dtype)
    s2 = self.std ** 2
    log_c = (-0.5 * (rho - r) ** 2 / s2 + jnp.log(jax.scipy.special.i0e(rho * r / s2))
             - math.log(2 * math.pi * s2))
    return jax.nn.logsumexp(log_c, axis=1) - math.log(len(self.radii))

  @property
  def scale(self) -> float:
    return float(max(self.radii)) + 3 * self.std


@dataclasses.dataclass(frozen=True)
class Checkerboard:
  """Uniform on the black squares of a cells×cells board covering [−half, half]².

  Square (i, j) (i along x, from the lower-left corner) is black when i + j is even;
  there are ⌈cells²/2⌉ of them, so p = 1/(#black · side²) on them and 0 elsewhere.
  """
  cells: int = 4
  half: float = 3.0

  @property
  def side(self) -> float:
    return 2 * self.half / self.cells

  def black(self) -> np.ndarray:
    """[#black, 2] indices (i, j) of the black squares."""
    ij = np.stack(np.meshgrid(np.arange(self.cells), np.arange(self.cells), indexing="ij"), -1)
    ij = ij.reshape(-1, 2)
    return ij[ij.sum(1) % 2 == 0]

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n samples: a black square uniformly, then a uniform point in it."""
    k_c, k_u = jax.random.split(key)
    black = jnp.asarray(self.black(), jnp.float32)
    corner = black[jax.random.randint(k_c, (n,), 0, len(black))] * self.side - self.half
    return corner + self.side * jax.random.uniform(k_u, (n, 2))

  def log_prob(self, x: jax.Array) -> jax.Array:
    """−log(#black · side²) on the black squares, −∞ elsewhere."""
    ij = jnp.floor((x + self.half) / self.side)
    inside = jnp.all((ij >= 0) & (ij < self.cells), axis=-1)
    on_black = inside & (jnp.sum(ij, axis=-1) % 2 == 0)
    log_p = -math.log(len(self.black()) * self.side ** 2)
    return jnp.where(on_black, log_p, -jnp.inf).astype(x.dtype)

  @property
  def scale(self) -> float:
    return self.half


def rings(std: float = 0.08) -> Rings:
  """Four rings of radii 0.75, 1.5, 2.25, 3 (FFJORD's 'rings')."""
  return Rings((0.75, 1.5, 2.25, 3.0), std)


def circles(std: float = 0.1) -> Rings:
  """Two circles of radii 1.25 and 2.5 (scikit-learn's make_circles, factor 0.5)."""
  return Rings((1.25, 2.5), std)


def checkerboard() -> Checkerboard:
  """A 4×4 checkerboard on [−3, 3]², uniform on its 8 black squares."""
  return Checkerboard()


def _two_spirals(key, n, noise=0.1):
  # ν = 3π√u (so ν has density 2ν/(3π)² on [0, 3π]), x = ±ν(−cos ν, sin ν)/3 + noise·ε.
  k_u, k_s, k_e = jax.random.split(key, 3)
  nu = 3 * jnp.pi * jnp.sqrt(jax.random.uniform(k_u, (n,)))
  sign = jnp.where(jax.random.bernoulli(k_s, 0.5, (n,)), 1.0, -1.0)
  x = (sign * nu / 3)[:, None] * jnp.stack([-jnp.cos(nu), jnp.sin(nu)], 1)
  return x + noise * jax.random.normal(k_e, (n, 2))


def two_spirals() -> Sampler:
  """Two interleaved spirals, point reflections of each other, in about [−3.3, 3.3]²."""
  return Sampler(_two_spirals, 3.4)


PINWHEEL = {"arms": 5, "radial_std": 0.3, "tangential_std": 0.1, "rate": 0.25, "scale": 1.75}


def _pinwheel(key, n):
  # (a, b) = (1 + 0.3ε₁, 0.1ε₂); arm c at angle 2πc/5 twisted by 0.25·exp(a); x = 1.75·R(φ)(a, b).
  p = PINWHEEL
  k_f, k_c = jax.random.split(key)
  f = jax.random.normal(k_f, (n, 2)) * jnp.array([p["radial_std"], p["tangential_std"]])
  f = f + jnp.array([1.0, 0.0])
  c = jax.random.randint(k_c, (n,), 0, p["arms"])
  phi = 2 * jnp.pi * c / p["arms"] + p["rate"] * jnp.exp(f[:, 0])
  cos, sin = jnp.cos(phi), jnp.sin(phi)
  return p["scale"] * jnp.stack([cos * f[:, 0] - sin * f[:, 1], sin * f[:, 0] + cos * f[:, 1]], 1)


def pinwheel() -> Sampler:
  """Five twisted arms (FFJORD's 'pinwheel'), radius about 1.75 ± 0.5."""
  return Sampler(_pinwheel, 3.2)


def _moons(key, n, noise=0.1, scale=2.0):
  # scikit-learn's make_moons, t ~ U(0, π): outer (cos t, sin t), inner (1 − cos t, ½ − sin t),
  # centred on their mean (½, ¼), then ×scale, + noise·ε.
  k_t, k_c, k_e = jax.random.split(key, 3)
  t = jnp.pi * jax.random.uniform(k_t, (n,))
  outer = jnp.stack([jnp.cos(t), jnp.sin(t)], 1)
  inner = jnp.stack([1 - jnp.cos(t), 0.5 - jnp.sin(t)], 1)
  x = jnp.where(jax.random.bernoulli(k_c, 0.5, (n,))[:, None], outer, inner)
  return scale * (x - jnp.array([0.5, 0.25])) + noise * jax.random.normal(k_e, (n, 2))


def moons() -> Sampler:
  """Two interleaved half-moons in about [−3, 3] × [−1.5, 1.5]."""
  return Sampler(_moons, 3.2)


# The toy distributions by name.
DATASETS: dict[str, Callable[[], object]] = {
    "8gaussians": eight_gaussians, "25gaussians": twenty_five_gaussians, "swissroll": swissroll,
    "rings": rings, "circles": circles, "checkerboard": checkerboard, "2spirals": two_spirals,
    "pinwheel": pinwheel, "moons": moons}


def get(name: str):
  """The toy distribution ``name`` (InvalidArgumentError listing the choices if unknown)."""
  return lookup(DATASETS, name, "dataset", "dataset")()
